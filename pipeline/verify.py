"""`python -m pipeline.verify --store STORE --manifest MANIFEST`: prove the store accounts for the manifest.

Every manifest segment must have features or a failure record in a complete shard, and none may
appear twice. Also checked: every caption of a video with features was encoded, each shard's arrays
hold the rows its index claims, and each encoder group carries the store's spec. Exit 0 iff all hold;
the last stdout line is a JSON object (segments, with_features, failed, missing, duplicated, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import zarr

from manifests.errors import ManifestError
from manifests.schema import Manifest
from pipeline.store import StoreError, layout, open_store
from pipeline.store.reader import FeatureStore


def _shard_problems(store: FeatureStore) -> list[str]:
    """Arrays shorter than their index says, or an encoder group with another spec than the root."""
    problems = []
    root = zarr.open_group(layout.zarr_store(store.root), mode="r")
    for shard in store.index.shards:
        marker = store.fs.read_json(layout.marker_path(shard))
        for group, n in marker["rows"].items():
            enc = group.removesuffix("_text")
            g = root[f"{layout.shard_path(shard)}/{group}"]
            if g.attrs.get("encoder_spec") != store.encoders.get(enc):
                problems.append(f"{shard}/{group}: encoder spec differs from the store's")
            for name, arr in g.arrays():
                if arr.shape[0] != n:
                    problems.append(f"{shard}/{group}/{name}: {arr.shape[0]} rows, index says {n}")
    return problems


def verify(store_root: str, manifest_path: str, deep: bool = True) -> dict:
    manifest = Manifest.read(manifest_path)
    store = open_store(store_root)
    wanted = manifest.segments.column("segment_id").to_pylist()
    wanted_set = set(wanted)
    feats = Counter(r["segment_id"] for r in store.segments() if r["encoder"] == next(iter(store.encoders)))
    fails = Counter(f.segment_id for f in store.failures() if f.segment_id is not None)
    with_features = [s for s in wanted if feats[s]]
    failed = [s for s in wanted if fails[s] and not feats[s]]
    missing = [s for s in wanted if not feats[s] and not fails[s]]
    duplicated = [s for s in wanted if feats[s] + fails[s] > 1]
    videos_with_features = {s["video_id"] for s in manifest.segments.to_pylist() if feats[s["segment_id"]]}
    stored_captions = set(store.index.captions.column("caption_id").to_pylist())
    caption_failed_videos = {f.video_id for f in store.failures() if f.stage == "text"}
    missing_captions = [c["caption_id"] for c in manifest.captions.to_pylist()
                        if c["video_id"] in videos_with_features and c["caption_id"] not in stored_captions
                        and c["video_id"] not in caption_failed_videos]
    problems = _shard_problems(store) if deep else []
    report = {"segments": len(wanted), "with_features": len(with_features), "failed": len(failed),
              "missing": len(missing), "duplicated": len(duplicated), "captions_missing": len(missing_captions),
              "shards": len(store.index.shards), "shard_problems": len(problems),
              "truncated": len({r["segment_id"] for r in store.segments() if r["truncated"] and r["segment_id"] in wanted_set}),
              "complete": not (missing or duplicated or missing_captions or problems)}
    report["examples"] = {"missing": missing[:5], "duplicated": duplicated[:5], "captions_missing": missing_captions[:5],
                          "shard_problems": problems[:5]}
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--shallow", action="store_true", help="skip the per-shard array/spec checks")
    args = p.parse_args(argv)
    try:
        report = verify(args.store, args.manifest, deep=not args.shallow)
    except (ManifestError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = "COMPLETE" if report["complete"] else "INCOMPLETE"
    print(f"{status}: {report['segments']} segments: {report['with_features']} with features, "
          f"{report['failed']} failed (recorded), {report['missing']} missing, {report['duplicated']} duplicated; "
          f"{report['truncated']} truncated; {report['captions_missing']} captions missing; "
          f"{report['shard_problems']} shard problems")
    for kind, ids in report["examples"].items():
        if ids:
            print(f"  {kind}: {', '.join(ids)}{' ...' if report.get(kind, 0) > len(ids) else ''}")
    print(json.dumps(report, sort_keys=True))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
