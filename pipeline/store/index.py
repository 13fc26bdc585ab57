"""The store index: what every complete shard holds, as columnar tables.

Each shard's marker is its own index (JSON). `consolidate` gathers all markers into parquet tables
under STORE/index/ so that opening a store with thousands of shards reads a few files; shards
committed after the last consolidation are read from their markers.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.store import layout
from pipeline.store.layout import StoreFS

TABLES = ("segments", "captions", "failures")

_SCHEMAS = {
    "segments": pa.schema([("shard", pa.string()), ("segment_id", pa.string()), ("video_id", pa.string()),
                           ("start", pa.float64()), ("end", pa.float64()), ("fps", pa.float64()),
                           ("end_actual", pa.float64()), ("truncated", pa.bool_()),
                           ("encoder", pa.string()), ("row", pa.int64()), ("n", pa.int64())]),
    "captions": pa.schema([("shard", pa.string()), ("caption_id", pa.string()), ("video_id", pa.string()),
                           ("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
                           ("kind", pa.string()), ("row", pa.int64())]),
    "failures": pa.schema([("shard", pa.string()), ("video_id", pa.string()), ("segment_id", pa.string()),
                           ("stage", pa.string()), ("reason", pa.string()), ("attempts", pa.int64())]),
}


def marker_tables(marker: dict) -> dict[str, pa.Table]:
    """One shard's marker as rows of the three index tables (segments: one row per encoder)."""
    shard = marker["shard"]
    segs = [{"shard": shard, "segment_id": s["segment_id"], "video_id": s["video_id"], "start": s["start"],
             "end": s.get("end"), "fps": s["fps"], "end_actual": s.get("end_actual"),
             "truncated": bool(s.get("truncated", False)), "encoder": enc, "row": r[0], "n": r[1]}
            for s in marker["segments"] for enc, r in s["rows"].items()]
    caps = [{"shard": shard, **{k: c.get(k) for k in ("caption_id", "video_id", "start", "end", "text", "kind",
                                                      "row")}} for c in marker["captions"]]
    fails = [{"shard": shard, **f} for f in marker["failures"]]
    return {name: pa.Table.from_pylist(rows, schema=_SCHEMAS[name])
            for name, rows in zip(TABLES, (segs, caps, fails))}


@dataclass
class StoreIndex:
    shards: list[str]
    segments: pa.Table
    captions: pa.Table
    failures: pa.Table

    def by_video(self, table: str) -> dict[str, np.ndarray]:
        """video_id -> row numbers of `table`, in table order."""
        t = getattr(self, table)
        if t.num_rows == 0:
            return {}
        vids = np.asarray(t.column("video_id").to_numpy(zero_copy_only=False), dtype=object)
        order = np.argsort(vids, kind="stable")
        uniq, starts = np.unique(vids[order], return_index=True)
        bounds = list(starts[1:]) + [len(order)]
        return {v: order[a:b] for v, a, b in zip(uniq, starts, bounds)}


def _read_parquet(fs: StoreFS, name: str) -> pa.Table:
    with fs.fs.open(fs.path(f"{layout.INDEX_DIR}/{name}.parquet"), "rb") as f:
        return pq.read_table(io.BytesIO(f.read()))


def load_index(fs: StoreFS) -> StoreIndex:
    """All complete shards: the consolidated tables plus markers of shards committed since."""
    complete, _ = fs.list_shards()
    parts: dict[str, list[pa.Table]] = {t: [] for t in TABLES}
    consolidated: set[str] = set()
    if fs.exists(f"{layout.INDEX_DIR}/shards.parquet"):
        listed = set(_read_parquet(fs, "shards").column("shard").to_pylist())
        consolidated = listed & set(complete)
        keep = pa.array(sorted(consolidated), pa.string())
        for t in TABLES:
            table = _read_parquet(fs, t)
            parts[t].append(table.filter(pc.is_in(table.column("shard"), value_set=keep)))
    for shard in complete:
        if shard not in consolidated:
            for t, table in marker_tables(fs.read_json(layout.marker_path(shard))).items():
                parts[t].append(table)
    tables = {t: pa.concat_tables(parts[t]) if parts[t] else _SCHEMAS[t].empty_table() for t in TABLES}
    return StoreIndex(shards=complete, **tables)


def consolidate(root: str) -> StoreIndex:
    """Rewrite STORE/index/*.parquet from the current complete shards (tables first, list last)."""
    fs = StoreFS(root)
    index = load_index(fs)
    for t in TABLES:
        buf = io.BytesIO()
        pq.write_table(getattr(index, t), buf)
        fs.write_bytes(f"{layout.INDEX_DIR}/{t}.parquet", buf.getvalue())
    buf = io.BytesIO()
    pq.write_table(pa.table({"shard": pa.array(index.shards, pa.string())}), buf)
    fs.write_bytes(f"{layout.INDEX_DIR}/shards.parquet", buf.getvalue())
    return index
