"""One run of the index: what a set of complete shards holds, as tables sorted by video id.

Tables (columns; string columns hold str):
    videos    id, seg_off, cap_off, fail_off [n + 1 each: the video's rows of the other tables],
              src_size, src_mtime, src_hash (the source file's identity when it was extracted; -1/NaN/'' unknown)
    segments  id, shard, start, end (NaN: to the end), fps, end_actual, truncated, row [E], n [E] (per encoder;
              rows within the shard, int32)
    captions  id, text, start, end (NaN: none), kind (code into meta["kinds"]; -1: none), shard, row
    failures  segment_id ('' : the video's captions), stage, reason, attempts, shard
    shards    name, rows [G] (per array group), crc_off [A] (first chunk of each array in `chunks`)
    chunks    crc, size (CRC-32C and byte size of every committed chunk)
Shard numbers are positions in the run's own shards table. A video's rows all come from one shard: the newest
shard that holds the video replaces everything older (a re-extracted video is never served twice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.store import layout
from pipeline.store.columns import FileColumns, MemColumns

SEGMENT_COLS = ("id", "shard", "start", "end", "fps", "end_actual", "truncated", "row", "n")
CAPTION_COLS = ("id", "text", "start", "end", "kind", "shard", "row")
FAILURE_COLS = ("segment_id", "stage", "reason", "attempts", "shard")


class IdColumn:
    """The sorted video ids of a run, looked up by binary search without a Python object per id."""

    def __init__(self, cols, key: str = "videos.id"):
        self.values = cols.columns[key] if isinstance(cols, MemColumns) else None
        if self.values is None:
            self.offsets, self.blob = cols.string_arrays(key)

    def __len__(self) -> int:
        return len(self.values) if self.values is not None else len(self.offsets) - 1

    def key(self, i: int) -> bytes:
        if self.values is not None:
            return self.values[i].encode()
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def __getitem__(self, i: int) -> str:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.values[i] if self.values is not None else self.key(i).decode()

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def insertion(self, video_id: str) -> tuple[int, bool]:
        """(position of the first id >= video_id, whether it is equal)."""
        target, lo, hi = video_id.encode(), 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.key(mid) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo, lo < len(self) and self.key(lo) == target

    def find(self, video_id: str) -> int:
        pos, found = self.insertion(video_id)
        return pos if found else -1


@dataclass(frozen=True)
class VideoRows:
    seg: tuple[int, int]
    cap: tuple[int, int]
    fail: tuple[int, int]


class Run:
    """A run's tables (mapped files or, for the journal's shards, memory) and its meta."""

    def __init__(self, name: str, cols: MemColumns | FileColumns, meta: dict):
        self.name, self.cols, self.meta = name, cols, meta
        self.encoders: list[str] = meta["encoders"]
        self.kinds: list[str] = meta["kinds"]
        self.ids = IdColumn(cols)
        self._off = {t: cols.full(f"videos.{t}_off") for t in ("seg", "cap", "fail")}
        self._names: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rows(self) -> int:
        """Size for merge decisions: rows of every table."""
        return len(self) + int(self._off["seg"][-1]) + int(self._off["cap"][-1]) if len(self) else 0

    def video(self, i: int) -> VideoRows:
        o = self._off
        return VideoRows(*((int(o[t][i]), int(o[t][i + 1])) for t in ("seg", "cap", "fail")))

    def source(self, i: int) -> dict | None:
        size = int(self.cols.get("videos.src_size", i, i + 1)[0])
        if size < 0:
            return None
        return {"size": size, "mtime": float(self.cols.get("videos.src_mtime", i, i + 1)[0]),
                "hash": str(self.cols.strings("videos.src_hash", i, i + 1)[0])}

    def table(self, table: str, names, lo: int, hi: int) -> dict[str, np.ndarray]:
        out = {}
        for c in names:
            key = f"{table}.{c}"
            out[c] = self.cols.strings(key, lo, hi) if _is_str(self.cols, key) else self.cols.get(key, lo, hi)
        return out

    def shard_name(self, s: int) -> str:
        name = self._names.get(s)
        if name is None:
            name = self._names[s] = str(self.cols.strings("shards.name", s, s + 1)[0])
        return name

    def shard_names(self) -> np.ndarray:
        return self.cols.strings("shards.name")

    def chunk(self, s: int, a: int, k: int) -> tuple[int, int]:
        """(crc32c, size) of chunk k of array a of shard s."""
        first = int(self.cols.get("shards.crc_off", s, s + 1)[0, a])
        crc = int(self.cols.get("chunks.crc", first + k, first + k + 1)[0])
        return crc, int(self.cols.get("chunks.size", first + k, first + k + 1)[0])


def _is_str(cols, key: str) -> bool:
    if isinstance(cols, MemColumns):
        return cols.columns[key].dtype == object
    return cols.cols[key]["kind"] == "str"


# ---- a run's tables from shard markers ---------------------------------------------------------------------
def _num(values, dtype) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype) if len(values) else np.zeros(0, dtype)


def _strings(values) -> np.ndarray:
    out = np.empty(len(values), object)
    out[:] = [str(v) for v in values]
    return out


def tables_from_markers(markers: list[dict], specs: dict[str, dict]) -> tuple[dict[str, np.ndarray], dict]:
    """The tables (columns) and meta of a run covering `markers`, oldest first: the newest shard of a video wins."""
    owner = {vid: k for k, m in enumerate(markers) for vid in m["videos"]}
    live = sorted(set(owner.values()))
    shard_no = {k: s for s, k in enumerate(live)}
    encoders = sorted(specs)
    kinds = sorted({c["kind"] for m in markers for c in m["captions"] if c.get("kind") is not None})
    rows: dict[str, list] = {"seg": [], "cap": [], "fail": []}
    counts = {t: [0] for t in rows}
    per_marker = [_by_video(m) for m in markers]
    vids = sorted(owner)
    for vid in vids:
        k = owner[vid]
        for t in rows:
            got = per_marker[k][t].get(vid, [])
            rows[t] += [(shard_no[k], r) for r in got]
            counts[t].append(counts[t][-1] + len(got))
    sources = [markers[owner[v]]["videos"][v] or {} for v in vids]
    cols = {"videos.id": _strings(vids), "videos.src_size": _num([s.get("size", -1) for s in sources], np.int64),
            "videos.src_mtime": _num([s.get("mtime") for s in sources], np.float64),
            "videos.src_hash": _strings([s.get("hash", "") for s in sources]),
            **{f"videos.{t}_off": np.array(c, np.int64) for t, c in counts.items()}}
    cols.update(_segment_cols(rows["seg"], encoders))
    cols.update(_caption_cols(rows["cap"], kinds))
    cols.update(_failure_cols(rows["fail"]))
    cols.update(_shard_cols([markers[k] for k in live], specs))
    meta = {"format": layout.SCHEMA_VERSION, "encoders": encoders, "kinds": kinds,
            "arrays": [f"{g}/{f.name}" for g, f in layout.arrays(specs)]}
    return cols, meta


def _by_video(marker: dict) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {"seg": {}, "cap": {}, "fail": {}}
    for t, key in (("seg", "segments"), ("cap", "captions"), ("fail", "failures")):
        for r in marker[key]:
            out[t].setdefault(r["video_id"], []).append(r)
    return out


def _segment_cols(rows: list, encoders: list[str]) -> dict[str, np.ndarray]:
    segs = [r for _, r in rows]
    def per_enc(i: int) -> np.ndarray:  # rows within a shard: int32 is plenty (a shard holds a few videos)
        return np.array([[r["rows"][e][i] for e in encoders] for r in segs], np.int32).reshape(-1, len(encoders))

    return {"segments.id": _strings([r["segment_id"] for r in segs]),
            "segments.shard": np.array([s for s, _ in rows], np.int32),
            "segments.start": _num([r["start"] for r in segs], np.float64),
            "segments.end": _num([r.get("end") for r in segs], np.float64),
            "segments.fps": _num([r["fps"] for r in segs], np.float64),
            "segments.end_actual": _num([r.get("end_actual") for r in segs], np.float64),
            "segments.truncated": np.array([bool(r.get("truncated")) for r in segs], bool),
            "segments.row": per_enc(0), "segments.n": per_enc(1)}


def _caption_cols(rows: list, kinds: list[str]) -> dict[str, np.ndarray]:
    caps = [r for _, r in rows]
    code = {k: i for i, k in enumerate(kinds)}
    return {"captions.id": _strings([r["caption_id"] for r in caps]),
            "captions.text": _strings([r.get("text") or "" for r in caps]),
            "captions.start": _num([r.get("start") for r in caps], np.float64),
            "captions.end": _num([r.get("end") for r in caps], np.float64),
            "captions.kind": np.array([code.get(r.get("kind"), -1) for r in caps], np.int8),
            "captions.shard": np.array([s for s, _ in rows], np.int32),
            "captions.row": np.array([r["row"] for r in caps], np.int32)}


def _failure_cols(rows: list) -> dict[str, np.ndarray]:
    fails = [r for _, r in rows]
    return {"failures.segment_id": _strings([r.get("segment_id") or "" for r in fails]),
            "failures.stage": _strings([r["stage"] for r in fails]),
            "failures.reason": _strings([r["reason"] for r in fails]),
            "failures.attempts": np.array([r.get("attempts", 1) for r in fails], np.int32),
            "failures.shard": np.array([s for s, _ in rows], np.int32)}


def _shard_cols(markers: list[dict], specs: dict[str, dict]) -> dict[str, np.ndarray]:
    groups = [g for g, _ in layout.groups(specs)]
    arrays = [f"{g}/{f.name}" for g, f in layout.arrays(specs)]
    crc, size, first = [], [], []
    for m in markers:
        offs = []
        for a in arrays:
            offs.append(len(crc))
            for c, s in m["chunks"].get(a, []):
                crc.append(c), size.append(s)
        first.append(offs)
    return {"shards.name": _strings([m["shard"] for m in markers]),
            "shards.rows": np.array([[m["rows"].get(g, 0) for g in groups] for m in markers], np.int64
                                    ).reshape(-1, len(groups)),
            "shards.crc_off": np.array(first, np.int64).reshape(-1, len(arrays)),
            "chunks.crc": np.array(crc, np.uint32), "chunks.size": np.array(size, np.uint32)}


def memory_run(markers: list[dict], specs: dict[str, dict], name: str = "journal") -> Run:
    cols, meta = tables_from_markers(markers, specs)
    return Run(name, MemColumns(cols), meta)


def expected_chunks(marker: dict, specs: dict[str, dict]) -> dict[str, int]:
    """Chunks each array of a shard must have, from its row counts."""
    return {f"{g}/{f.name}": math.ceil(marker["rows"].get(g, 0) / layout.chunk_rows(f))
            for g, f in layout.arrays(specs)}


