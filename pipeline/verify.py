"""`python -m pipeline.verify --store STORE --manifest MANIFEST [--deep]`: prove the store accounts for the
manifest and serves what was committed.

Every manifest segment must have features or a failure record, none twice; every caption of a video with
features must be encoded. Every chunk of every shard the index serves must exist with its committed size
(`--deep`: also be read back and match its CRC-32C, and each encoder group must carry the store's spec).
Damaged shards are listed with the repair command (`python -m pipeline.extract ... --repair`). Exit 0 iff all
hold; the last stdout line is a JSON object (segments, with_features, failed, missing, duplicated, sizes, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import numpy as np

from manifests.errors import ManifestError
from manifests.schema import Manifest
from pipeline.store import StoreError, layout, open_store
from pipeline.store.chunks import crc32c
from pipeline.store.index import Index, parse_marker
from pipeline.store.reader import FeatureStore
from pipeline.store.runs import Run


def served_shards(run: Run, live: np.ndarray | None) -> np.ndarray:
    """Shard numbers of `run` that serve at least one live video."""
    used = []
    for table, off in (("segments", "seg"), ("captions", "cap"), ("failures", "fail")):
        shard = run.cols.full(f"{table}.shard")
        if live is not None:
            counts = np.diff(run.cols.full(f"videos.{off}_off"))
            shard = shard[np.repeat(live, counts)]
        used.append(np.unique(shard))
    return np.unique(np.concatenate(used)).astype(np.int64)


def _expected(store: FeatureStore, run: Run, s: int):
    """(group, field, chunk key, crc, size) of every chunk shard s of `run` committed."""
    rows = run.cols.get("shards.rows", s, s + 1)[0]
    shard = run.shard_name(s)
    names = [g for g, _ in layout.groups(store.encoders)]
    for a, (group, f) in enumerate(layout.arrays(store.encoders)):
        for k in range(layout.n_chunks(int(rows[names.index(group)]), f)):
            crc, size = run.chunk(s, a, k)
            yield group, f, layout.chunk_key(shard, group, f, k), crc, size


def shard_problems(store: FeatureStore, run: Run, s: int, deep: bool) -> list[str]:
    shard = run.shard_name(s)
    problems = []
    try:
        raw = store.fs.read_bytes(layout.marker_path(shard)) if deep else None
        if deep:
            parse_marker(store.fs, shard, raw)
        elif not store.fs.exists(layout.marker_path(shard)):
            problems.append(f"{shard}: marker {layout.MARKER} missing")
    except FileNotFoundError:
        problems.append(f"{shard}: marker {layout.MARKER} missing")
    except StoreError as exc:
        problems.append(str(exc))
    listed = {}
    if not deep:
        try:
            listed = {p[len(store.fs.path()) + 1:]: info["size"]
                      for p, info in store.fs.fs.find(store.fs.path(layout.shard_path(shard)), detail=True).items()}
        except FileNotFoundError:
            listed = {}
    for group, f, key, crc, size in _expected(store, run, s):
        if deep:
            try:
                data = store.fs.read_bytes(key)
            except FileNotFoundError:
                problems.append(f"{key}: missing")
                continue
            if len(data) != size or crc32c(data) != crc:
                problems.append(f"{key}: {len(data)} bytes, crc32c {crc32c(data):08x}; committed {size}, {crc:08x}")
        elif key not in listed:
            problems.append(f"{key}: missing")
        elif listed[key] != size:
            problems.append(f"{key}: {listed[key]} bytes, committed {size}")
    if deep:
        problems += _group_specs(store, shard)
    return problems


def _group_specs(store: FeatureStore, shard: str) -> list[str]:
    import zarr

    from pipeline.store.fs import zarr_store

    out = []
    try:
        root = zarr.open_group(zarr_store(store.root), mode="r")
        for group, _ in layout.groups(store.encoders):
            attrs = root[f"{layout.shard_path(shard)}/{group}"].attrs.get("encoder_spec")
            if attrs != store.encoders[group.removesuffix("_text")]:
                out.append(f"{shard}/{group}: encoder spec differs from the store's")
    except (KeyError, FileNotFoundError, ValueError) as exc:
        out.append(f"{shard}: zarr metadata unreadable ({exc})")
    return out


def damaged_shards(root: str, deep: bool = False, store: FeatureStore | None = None) -> dict[str, list[str]]:
    """Shards the index serves whose files are missing or damaged: name -> problems."""
    store = store or open_store(root)
    out = {}
    for run, live in store.index.live():
        for s in served_shards(run, live):
            problems = shard_problems(store, run, int(s), deep)
            if problems:
                out[run.shard_name(int(s))] = problems
    return out


def videos_of_shards(index: Index, shards: set[str]) -> set[str]:
    """Live videos served by any of `shards`."""
    out = set()
    if not shards:
        return out
    for run, live in index.live():
        names = run.shard_names()
        bad = np.flatnonzero(np.isin(names.astype(str), sorted(shards)))
        if not len(bad):
            continue
        for table, off in (("segments", "seg"), ("captions", "cap"), ("failures", "fail")):
            video = np.repeat(np.arange(len(run)), np.diff(run.cols.full(f"videos.{off}_off")))
            hit = np.unique(video[np.isin(run.cols.full(f"{table}.shard"), bad)])
            out.update(run.ids[int(i)] for i in hit if live is None or live[i])
    return out


def store_sizes(store: FeatureStore) -> dict[str, int]:
    """Bytes on disk per array group (the chunks of the shards the index serves)."""
    sizes: Counter = Counter()
    names = [g for g, _ in layout.groups(store.encoders)]
    for run, live in store.index.live():
        served = served_shards(run, live)
        csum = np.concatenate([[0], np.cumsum(run.cols.full("chunks.size"), dtype=np.int64)])
        off, rows = run.cols.full("shards.crc_off")[served], run.cols.full("shards.rows")[served]
        for a, (group, f) in enumerate(layout.arrays(store.encoders)):
            n = -(-rows[:, names.index(group)] // layout.chunk_rows(f))
            sizes[group] += int((csum[off[:, a] + n] - csum[off[:, a]]).sum())
    return dict(sizes)


def verify(store_root: str, manifest_path: str, deep: bool = False) -> dict:
    manifest = Manifest.read(manifest_path)
    store = open_store(store_root)
    wanted = manifest.segments.column("segment_id").to_pylist()
    enc = sorted(store.encoders)[0]
    feats = Counter(r["segment_id"] for r in store.segments(encoder=enc))
    fails = Counter(f.segment_id for f in store.failures() if f.segment_id is not None)
    with_features = [s for s in wanted if feats[s]]
    failed = [s for s in wanted if fails[s] and not feats[s]]
    missing = [s for s in wanted if not feats[s] and not fails[s]]
    duplicated = [s for s in wanted if feats[s] + fails[s] > 1]
    videos_with_features = {s["video_id"] for s in manifest.segments.to_pylist() if feats[s["segment_id"]]}
    stored_captions = {c for v in videos_with_features for c in store.caption_table(v)["caption_id"]}
    caption_failed = {f.video_id for f in store.failures() if f.stage == "text"}
    missing_captions = [c["caption_id"] for c in manifest.captions.to_pylist()
                        if c["video_id"] in videos_with_features and c["caption_id"] not in stored_captions
                        and c["video_id"] not in caption_failed]
    damaged = damaged_shards(store_root, deep, store)
    problems = [p for ps in damaged.values() for p in ps]
    report = {"segments": len(wanted), "with_features": len(with_features), "failed": len(failed),
              "missing": len(missing), "duplicated": len(duplicated), "captions_missing": len(missing_captions),
              "shards": store.index.n_shards, "damaged_shards": len(damaged), "shard_problems": len(problems),
              "truncated": len({r["segment_id"] for r in store.segments(encoder=enc) if r["truncated"]} & set(wanted)),
              "bytes": store_sizes(store), "deep": deep,
              "complete": not (missing or duplicated or missing_captions or damaged)}
    report["examples"] = {"missing": missing[:5], "duplicated": duplicated[:5], "captions_missing": missing_captions[:5],
                          "shard_problems": problems[:5], "damaged_shards": sorted(damaged)[:5]}
    return report


def print_report(report: dict, store: str, manifest: str) -> None:
    status = "COMPLETE" if report["complete"] else "INCOMPLETE"
    print(f"{status}: {report['segments']} segments: {report['with_features']} with features, "
          f"{report['failed']} failed (recorded), {report['missing']} missing, {report['duplicated']} duplicated; "
          f"{report['truncated']} truncated; {report['captions_missing']} captions missing; "
          f"{report['damaged_shards']} damaged shards ({'checksums' if report['deep'] else 'chunk files and sizes'} "
          f"checked)")
    for group, n in sorted(report["bytes"].items()):
        print(f"  {group}: {n / 2**20:.1f} MiB")
    for kind, ids in report["examples"].items():
        if ids:
            print(f"  {kind}: {', '.join(ids)}{' ...' if report.get(kind, 0) > len(ids) else ''}")
    if report["damaged_shards"]:
        print(f"  repair: python -m pipeline.extract --manifest {manifest} --store {store} --repair"
              f"{' --deep' if report['deep'] else ''} (with the encoder options of the original run)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--deep", action="store_true", help="read every chunk and check its checksum")
    args = p.parse_args(argv)
    try:
        report = verify(args.store, args.manifest, deep=args.deep)
    except (ManifestError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report, args.store, args.manifest)
    print(json.dumps(report, sort_keys=True))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
