"""`python -m pipeline.upgrade --store STORE`: bring a store written by an earlier groundcache to this version,
or rebuild a damaged index, from the shards' own markers. Feature chunks are never rewritten.

    python -m pipeline.upgrade --store STORE                  # version 1 -> 2, or rebuild the index (version 2)
    python -m pipeline.upgrade --store STORE --restore-root   # zarr.json lost: rebuild it from the shards' specs

For a version-1 store it checksums every committed chunk into a version-2 marker per shard (zarr left all-zero
chunks unwritten in version 1: they are written out explicitly, since a missing chunk is now an error), writes
the index, then marks the root as version 2 (last: a killed upgrade is simply run again). Shard directories
without a marker (debris of an interrupted version-1 run) are listed, not deleted. Exit 0 on success, 2 when
the store cannot be upgraded (the message says why).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import zarr
from tqdm import tqdm

from pipeline.store import StoreError, layout
from pipeline.store.chunks import crc32c, encode
from pipeline.store.consolidate import rebuild_from_markers
from pipeline.store.fs import StoreFS, zarr_store
from pipeline.store.index import parse_marker
from pipeline.store.root import normalise, write_root


def _root_meta(fs: StoreFS) -> dict:
    try:
        attrs = fs.read_json(layout.ROOT_META)["attributes"][layout.ATTRS_KEY]
    except FileNotFoundError:
        raise StoreError(f"{fs.url}: no {layout.ROOT_META}; rebuild it with --restore-root") from None
    except (KeyError, TypeError):
        raise StoreError(f"{fs.url}: {layout.ROOT_META} holds no groundcache attrs; not a groundcache store") from None
    return attrs


def _v1_marker(fs: StoreFS, marker: dict, specs: dict[str, dict], report: dict) -> dict:
    """A version-2 marker for a version-1 shard: its videos, specs and every chunk's checksum."""
    shard, chunks = marker["shard"], {}
    for group, f in layout.arrays(specs):
        sums = []
        for k in range(layout.n_chunks(marker["rows"].get(group, 0), f)):
            key = layout.chunk_key(shard, group, f, k)
            try:
                data = fs.read_bytes(key)
            except FileNotFoundError:  # an all-zero chunk version 1 left implicit
                data = encode(f, np.zeros((0, *f.shape), f.dtype))
                fs.write_bytes(key, data)
                report["zero_chunks_written"] += 1
            sums.append([crc32c(data), len(data)])
        chunks[f"{group}/{f.name}"] = sums
    videos = {r["video_id"]: None for t in ("segments", "captions", "failures") for r in marker[t]}
    return {**{k: v for k, v in marker.items() if k != "schema_version"}, "format": layout.SCHEMA_VERSION,
            "specs": specs, "chunks": chunks, "videos": videos}


def _markers(fs: StoreFS, specs: dict[str, dict], version: int, report: dict) -> list[dict]:
    markers = []
    for name in tqdm(fs.list_names(layout.SHARDS_DIR), desc="shards", unit="shard"):
        if not layout.is_shard_name(name):
            continue
        try:
            raw = fs.read_bytes(layout.marker_path(name))
        except FileNotFoundError:
            report["incomplete_shards"].append(name)
            continue
        marker = json.loads(raw) if version == 1 else parse_marker(fs, name, raw)
        if marker.get("schema_version") == 1 and "format" not in marker:
            marker = _v1_marker(fs, marker, specs, report)
            fs.write_json(layout.marker_path(name), marker)
            report["markers_upgraded"] += 1
        markers.append(marker)
    return markers


def upgrade(root: str) -> dict:
    """Upgrade a version-1 store, or rebuild a version-2 store's index; returns what was done."""
    fs = StoreFS(root)
    attrs = _root_meta(fs)
    version = attrs.get("schema_version")
    if version not in (1, layout.SCHEMA_VERSION):
        raise StoreError(f"{root}: store schema version {version}; this groundcache upgrades version 1")
    specs = {k: normalise(v) for k, v in attrs["encoders"].items()}
    report = {"from_version": version, "markers_upgraded": 0, "zero_chunks_written": 0, "incomplete_shards": []}
    markers = _markers(fs, specs, version, report)
    index = rebuild_from_markers(root, specs, markers)
    for name in fs.list_names(layout.INDEX_DIR):
        if name.endswith(".parquet"):  # the version-1 index
            fs.remove(f"{layout.INDEX_DIR}/{name}")
    if version != layout.SCHEMA_VERSION:
        write_root(root, {**attrs, "schema_version": layout.SCHEMA_VERSION})
    report.update(shards=len(markers), videos=sum(len(r) for r in index.runs))
    return report


def restore_root(root: str) -> dict:
    """Write a lost zarr.json from the specs every shard was written with (they must all agree)."""
    fs = StoreFS(root)
    if fs.exists(layout.ROOT_META):
        try:
            _root_meta(fs)
            readable = True
        except StoreError:
            readable = False
        if readable:
            raise StoreError(f"{root}: {layout.ROOT_META} is present and readable; nothing to restore")
    seen: dict[str, dict] = {}
    for name in fs.list_names(layout.SHARDS_DIR):
        if layout.is_shard_name(name) and fs.exists(layout.marker_path(name)):
            seen[name] = _shard_specs(fs, name)
    distinct = {json.dumps(s, sort_keys=True) for s in seen.values()}
    if len(distinct) != 1:
        raise StoreError(f"{root}: {'no complete shard' if not distinct else 'shards disagree on their specs'}; "
                         f"the root cannot be rebuilt")
    write_root(root, {"schema_version": layout.SCHEMA_VERSION, "encoders": json.loads(distinct.pop()),
                      "restored": True})
    return {"shards": len(seen)}


def _shard_specs(fs: StoreFS, name: str) -> dict:
    marker = fs.read_json(layout.marker_path(name))
    if "specs" in marker:
        return marker["specs"]
    group = zarr.open_group(zarr_store(fs.url), mode="r")[layout.shard_path(name)]
    return {enc: dict(group[enc].attrs["encoder_spec"]) for enc in marker["encoders"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.upgrade", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--restore-root", action="store_true", help="rebuild a lost zarr.json from the shards' specs")
    args = p.parse_args(argv)
    try:
        report = restore_root(args.store) if args.restore_root else upgrade(args.store)
    except (StoreError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report.get("incomplete_shards"):
        print(f"note: {len(report['incomplete_shards'])} shard directories without a marker (an interrupted run) are "
              f"not part of the store; delete them if no run is writing: {', '.join(report['incomplete_shards'][:5])}")
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
