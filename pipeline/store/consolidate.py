"""Consolidation: the journal's shards become a run, and runs are merged so that few remain.

Steps, each safe to kill (SIGKILL) at any point:
1. delete debris of earlier consolidations: run directories CURRENT does not name (a run retired by the
   previous consolidation, or one a killed consolidation left half-written) and journal entries CURRENT
   has already consumed;
2. write the journal's shards as a new run (column files, then meta.json);
3. merge the newest runs while the older of the last two is at most `MERGE_FACTOR` times the newer, so runs
   shrink geometrically (at most ~log4(shards / JOURNAL_LIMIT) runs) and each row is rewritten O(log) times;
4. write CURRENT.json (atomic): the new runs, the journal entries it consumed, the runs it retired;
5. delete the consumed journal entries.
Until step 4 readers use the old CURRENT plus the journal; after it, the new runs (CURRENT's `consumed` tells
them to ignore journal entries a kill left behind). Retired runs stay one consolidation longer for readers
that opened the previous CURRENT.
"""
from __future__ import annotations

import heapq
import time
import uuid

import numpy as np

from pipeline.store import layout
from pipeline.store.columns import ColumnWriter, MemColumns
from pipeline.store.errors import StoreError
from pipeline.store.fs import StoreFS
from pipeline.store.index import (Index, check_marker_specs, journal_shards, load_index, open_run, read_current,
                                  read_markers)
from pipeline.store.root import read_root_attrs
from pipeline.store.runs import CAPTION_COLS, FAILURE_COLS, SEGMENT_COLS, Run, tables_from_markers

MERGE_FACTOR = 4
BLOCK_ROWS = 1 << 20  # rows copied per step when merging (bounds memory whatever the run size)
VIDEO_COLS = ("id", "src_size", "src_mtime", "src_hash")
TABLE_COLS = {"segments": SEGMENT_COLS, "captions": CAPTION_COLS, "failures": FAILURE_COLS}
OFF = {"segments": "seg", "captions": "cap", "failures": "fail"}


def new_run_name() -> str:
    return f"run-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


class RunWriter:
    """Writes one run directory from blocks of consecutive videos; meta.json last."""

    def __init__(self, fs: StoreFS, meta: dict):
        self.fs, self.name, self.meta = fs, new_run_name(), dict(meta)
        self.dir = f"{layout.INDEX_DIR}/{self.name}"
        self.cols = ColumnWriter(fs, self.dir)
        self.totals = {"seg": 0, "cap": 0, "fail": 0, "chunks": 0}
        for t in ("seg", "cap", "fail"):
            self.cols.append("videos", {f"{t}_off": np.zeros(1, np.int64)})

    def videos(self, columns: dict, counts: dict[str, np.ndarray]) -> None:
        """Append videos (`columns`: VIDEO_COLS) with their row counts per table (seg, cap, fail)."""
        self.cols.append("videos", columns)
        for t, n in counts.items():
            self.cols.append("videos", {f"{t}_off": self.totals[t] + np.cumsum(n, dtype=np.int64)})
            self.totals[t] += int(np.sum(n))

    def rows(self, table: str, columns: dict) -> None:
        self.cols.append(table, columns)

    def shards(self, names, rows: np.ndarray, crc_off: np.ndarray, crc: np.ndarray, size: np.ndarray) -> None:
        self.cols.append("shards", {"name": names, "rows": rows, "crc_off": crc_off + self.totals["chunks"]})
        self.cols.append("chunks", {"crc": crc, "size": size})
        self.totals["chunks"] += len(crc)

    def close(self) -> dict:
        info = self.cols.close()
        meta = {**self.meta, **info, "videos": info["columns"]["videos.id"]["length"]
                if "videos.id" in info["columns"] else 0}
        self.fs.write_json(f"{self.dir}/meta.json", meta)
        rows = meta["videos"] + self.totals["seg"] + self.totals["cap"]
        return {"name": self.name, "videos": meta["videos"], "rows": rows}


def write_tables(fs: StoreFS, cols: dict[str, np.ndarray], meta: dict) -> dict:
    """A run from whole in-memory tables (`runs.tables_from_markers`)."""
    w = RunWriter(fs, meta)
    off = {t: cols[f"videos.{t}_off"] for t in ("seg", "cap", "fail")}
    w.videos({c: cols[f"videos.{c}"] for c in VIDEO_COLS}, {t: np.diff(o) for t, o in off.items()})
    for table, names in TABLE_COLS.items():
        w.rows(table, {c: cols[f"{table}.{c}"] for c in names})
    w.shards(cols["shards.name"], cols["shards.rows"], cols["shards.crc_off"], cols["chunks.crc"], cols["chunks.size"])
    return w.close()


# ---- merging runs ------------------------------------------------------------------------------------------
def merge_order(runs: list[Run]) -> list[list[int]]:
    """Pieces [k, i0, i1] of consecutive videos of run k, in id order; for an id in several runs the newest."""
    def keys(k: int, run: Run):
        return ((run.ids.key(i), -k, i) for i in range(len(run)))

    streams = [keys(k, run) for k, run in enumerate(runs)]
    pieces: list[list[int]] = []
    last = None
    for key, neg_k, i in heapq.merge(*streams):
        if key == last:
            continue  # an older run's copy of a video already taken from a newer run
        last, k = key, -neg_k
        if pieces and pieces[-1][0] == k and pieces[-1][2] == i:
            pieces[-1][2] = i + 1
        else:
            pieces.append([k, i, i + 1])
    return pieces


def merge_runs(fs: StoreFS, runs: list[Run]) -> dict:
    """One run holding what `runs` (oldest first) serve; every shard is kept (renumbered)."""
    meta = {k: runs[-1].meta[k] for k in ("format", "encoders", "arrays")}
    kinds = sorted({k for run in runs for k in run.kinds})
    w = RunWriter(fs, {**meta, "kinds": kinds})
    shard_base = np.cumsum([0] + [run.cols.length("shards.name") for run in runs])
    _copy_videos(w, runs[-1], 0, 0, 0, kinds)  # no rows: creates every column even if nothing is served
    for k, i0, i1 in merge_order(runs):
        for a, b in _blocks(runs[k], i0, i1):
            _copy_videos(w, runs[k], a, b, int(shard_base[k]), kinds)
    for run in runs:
        n = run.cols.length("shards.name")
        w.shards(run.cols.raw_strings("shards.name", 0, n), run.cols.get("shards.rows"),
                 run.cols.get("shards.crc_off"), run.cols.get("chunks.crc"), run.cols.get("chunks.size"))
    return w.close()


def _blocks(run: Run, i0: int, i1: int):
    """[i0, i1) cut so that no step copies more than BLOCK_ROWS caption rows."""
    cap = run.cols.full("videos.cap_off")
    a = i0
    while a < i1:
        b = int(np.searchsorted(cap, cap[a] + BLOCK_ROWS, side="right")) - 1
        b = min(i1, max(a + 1, b))
        yield a, b
        a = b


def _copy_videos(w: RunWriter, run: Run, a: int, b: int, shard_base: int, kinds: list[str]) -> None:
    cols = run.cols
    vids = {c: _read(cols, f"videos.{c}", a, b) for c in VIDEO_COLS}
    counts = {}
    for table, names in TABLE_COLS.items():
        off = cols.get(f"videos.{OFF[table]}_off", a, b + 1)
        counts[OFF[table]] = np.diff(off)
        lo, hi = int(off[0]), int(off[-1])
        rows = {c: _read(cols, f"{table}.{c}", lo, hi) for c in names}
        rows["shard"] = rows["shard"] + shard_base
        if table == "captions":
            remap = np.array([kinds.index(k) for k in run.kinds] + [-1], np.int8)
            rows["kind"] = remap[rows["kind"]]
        w.rows(table, rows)
    w.videos(vids, counts)


def _read(cols, key: str, lo: int, hi: int):
    is_str = cols.columns[key].dtype == object if isinstance(cols, MemColumns) else cols.cols[key]["kind"] == "str"
    return cols.raw_strings(key, lo, hi) if is_str else np.asarray(cols.get(key, lo, hi))


# ---- consolidation -----------------------------------------------------------------------------------------
def consolidate(root: str, specs: dict[str, dict] | None = None, merge_factor: int = MERGE_FACTOR) -> Index:
    """Fold the journal into the runs (see the module docstring); returns the index as now committed."""
    fs = StoreFS(root)
    if specs is None:
        attrs = read_root_attrs(fs)
        if attrs is None:
            raise StoreError(f"{root}: no groundcache store here")
        specs = attrs["encoders"]
    current = read_current(fs)
    _remove_debris(fs, current)
    shards = journal_shards(fs, current)
    runs = [dict(r) for r in current["runs"]]
    retired: list[str] = []
    if shards:
        markers = read_markers(fs, shards)
        check_marker_specs(fs, markers, specs)
        runs.append(write_tables(fs, *tables_from_markers(markers, specs)))
        while len(runs) >= 2 and runs[-2]["rows"] <= merge_factor * max(1, runs[-1]["rows"]):
            pair = runs[-2:]
            runs[-2:] = [merge_runs(fs, [open_run(fs, r["name"]) for r in pair])]
            retired += [r["name"] for r in pair]
    old_names = {r["name"] for r in current["runs"]}
    if shards or current.get("consumed"):
        fs.write_json(layout.CURRENT, {"format": layout.SCHEMA_VERSION, "runs": runs, "consumed": shards,
                                       "retired": [r for r in retired if r in old_names]})
        for r in retired:
            if r not in old_names:  # written and merged away in this same call: no reader has seen it
                fs.remove_tree(f"{layout.INDEX_DIR}/{r}")
        for shard in shards:
            fs.remove(layout.journal_path(shard))
    return load_index(fs, specs)


def _remove_debris(fs: StoreFS, current: dict) -> None:
    keep = {r["name"] for r in current["runs"]}
    for name in fs.list_names(layout.INDEX_DIR):
        if name.startswith("run-") and name not in keep:
            fs.remove_tree(f"{layout.INDEX_DIR}/{name}")
    for shard in current.get("consumed", ()):
        fs.remove(layout.journal_path(shard))


def rebuild_from_markers(root: str, specs: dict[str, dict], markers: list[dict]) -> Index:
    """Replace the whole index by one run over `markers` (the upgrade and repair path)."""
    fs = StoreFS(root)
    check_marker_specs(fs, markers, specs)
    run = write_tables(fs, *tables_from_markers(sorted(markers, key=lambda m: (m["committed"], m["shard"])), specs))
    try:
        old = read_current(fs)
    except StoreError:  # the index being rebuilt is the damaged one
        old = {"runs": []}
    fs.write_json(layout.CURRENT, {"format": layout.SCHEMA_VERSION, "runs": [run],
                                   "consumed": [m["shard"] for m in markers],
                                   "retired": [r["name"] for r in old.get("runs", [])]})
    for m in markers:
        fs.remove(layout.journal_path(m["shard"]))
    return load_index(fs, specs)
