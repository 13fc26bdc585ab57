"""`python -m pipeline.import_hdf5`: bring features computed by other tools into a store.

    python -m pipeline.import_hdf5 --h5 FEATURES.h5 --store STORE --manifest MANIFEST [--spec SPECS.json]

Expected HDF5 layout, one group per video and encoder (shapes must match the store's encoder spec):

    /<video_id>/<encoder>/global   [N, D]             float
    /<video_id>/<encoder>/grid     [N, *grid, D]      float (clip: 7x7; s3d: T'x7x7)
    /<video_id>/<encoder>/times    [N]                seconds, increasing (clip: frame time; s3d: window start)
    /<video_id>/<encoder>/valid    [N]                s3d only, optional: real frames per window

Every encoder of the store must be present for each imported video. The manifest decides which
segments the rows belong to (rows with start <= time < end of each of the video's segments, at the
segment's fps); videos absent from the file are left for `pipeline.extract` to do, which then skips
what was imported. A new store needs `--spec`: a JSON object {encoder: spec} (e.g. copied from an
existing store's zarr.json) describing the encoders that produced the features.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

from manifests.errors import ManifestError
from manifests.schema import Manifest
from pipeline.plan import plan_shards
from pipeline.store import ShardWriter, StoreError, WriterLock, consolidate, init_store, layout
from pipeline.store.root import claim_root
from pipeline.store.writer import clear_inflight


class HDF5LayoutError(ValueError):
    """The HDF5 file does not match the documented layout or the store's spec."""


def _read_encoder(h5: h5py.File, path: str, vid: str, enc: str, spec: dict) -> dict[str, np.ndarray]:
    group = f"{vid}/{enc}"
    if group not in h5:
        raise HDF5LayoutError(f"{path}: /{group} missing (the store holds encoders {enc!r} for every video)")
    want = {f.name: f.shape for f in layout.frame_fields(spec)}
    out = {}
    for name, shape in want.items():
        if name not in h5[group]:
            if name == "valid":
                continue
            raise HDF5LayoutError(f"{path}: /{group}/{name} missing")
        arr = np.asarray(h5[group][name])
        if arr.shape[1:] != shape:
            raise HDF5LayoutError(f"{path}: /{group}/{name} has rows of shape {arr.shape[1:]}, the store's {enc} "
                                f"spec needs {shape}")
        out[name] = arr
    if "valid" in want and "valid" not in out:
        out["valid"] = np.full(len(out["times"]), int(spec["window"]), np.int16)
    lengths = {len(a) for a in out.values()}
    if len(lengths) != 1:
        raise HDF5LayoutError(f"{path}: /{group} arrays have different lengths {sorted(lengths)}")
    if np.any(np.diff(out["times"]) <= 0):
        raise HDF5LayoutError(f"{path}: /{group}/times must be strictly increasing")
    return out


def import_hdf5(h5_path: str, store: str, manifest_path: str, specs: dict | None = None) -> dict:
    manifest = Manifest.read(manifest_path)
    attrs = claim_root(store)
    if attrs is None and specs is None:
        raise StoreError(f"{store}: no store yet; pass --spec with the encoder specs of the imported features")
    with WriterLock(store):
        specs = init_store(store, specs or attrs["encoders"])["encoders"]
        clear_inflight(store)
        with h5py.File(h5_path, "r") as h5:
            present = set(h5.keys())
            plan = plan_shards([v for v in manifest.videos.to_pylist() if v["video_id"] in present],
                               [s for s in manifest.segments.to_pylist() if s["video_id"] in present],
                               [], consolidate(store, specs))
            imported = 0
            for shard in plan.shards:
                writer = ShardWriter(store, shard.name, specs)
                for video in shard.videos:
                    data = {enc: _read_encoder(h5, h5_path, video.video_id, enc, spec) for enc, spec in specs.items()}
                    for seg in video.segments:
                        _write_segment(writer, seg, data)
                        imported += 1
                writer.commit()
        consolidate(store, specs)
    return {"videos_in_file": len(present), "segments_imported": imported, "shards_written": len(plan.shards)}


def _write_segment(writer: ShardWriter, seg: dict, data: dict[str, dict[str, np.ndarray]]) -> None:
    start, end = float(seg["start"]), seg.get("end")
    with writer.segment({k: seg.get(k) for k in ("segment_id", "video_id", "start", "end", "fps")}) as rows:
        last = start
        for enc, arrays in data.items():
            t = arrays["times"]
            keep = (t >= start - 1e-6) & (t < (np.inf if end is None else end) - 1e-6)
            writer.append_frames(enc, **{k: v[keep] for k, v in arrays.items()})
            last = max(last, float(t[keep][-1]) if keep.any() else last)
        rows.info.update(truncated=False, end_actual=end if end is not None else last, imported=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.import_hdf5", description=__doc__.split("\n\n")[0])
    p.add_argument("--h5", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--spec", type=Path, help="JSON {encoder: spec} for a new store")
    args = p.parse_args(argv)
    try:
        specs = json.loads(args.spec.read_text()) if args.spec else None
        summary = import_hdf5(args.h5, args.store, args.manifest, specs)
    except (HDF5LayoutError, ManifestError, StoreError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
