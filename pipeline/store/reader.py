"""Reading the store: a video's or a time range's features with their timestamps in one call.

Opening costs a bounded number of requests and no Python object per video, segment or caption
(`pipeline.store.index`); a video's rows are looked up when it is asked for. Every chunk is checked against
the checksum committed with it: a missing or damaged chunk is a `StoreCorruptError`, never zeros.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.store import layout
from pipeline.store.chunks import ChunkCache, check_chunk, decode
from pipeline.store.errors import NotInStoreError, StoreCorruptError, StoreError
from pipeline.store.fs import StoreFS
from pipeline.store.index import Index, load_index
from pipeline.store.root import check_specs, read_root_attrs
from pipeline.store.runs import CAPTION_COLS, Run


@dataclass(frozen=True)
class FailureRecord:
    video_id: str
    segment_id: str | None
    stage: str
    reason: str
    attempts: int = 1


@dataclass(frozen=True)
class TablePart:
    """Bulk access to one run of the index (`FeatureStore.table_parts`): whole mapped columns."""

    ids: Sequence[str]               # the run's video ids, sorted
    live: np.ndarray | None          # videos no newer run replaces (None: all)
    offsets: np.ndarray              # [videos + 1] rows of the table per video
    columns: dict[str, np.ndarray]
    kinds: list[str]                 # caption kind codes
    encoders: list[str]              # order of the per-encoder columns (segments row / n)


class VideoIds(Sequence):
    """The ids of videos with features, sorted, as a sequence that builds no object per id until asked."""

    def __init__(self, ids: Sequence[str], positions: np.ndarray | None):
        self.ids, self.positions = ids, positions

    def __len__(self) -> int:
        return len(self.ids) if self.positions is None else len(self.positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.ids[i] if self.positions is None else self.ids[int(self.positions[i])]

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"VideoIds({len(self)} videos)"


class FeatureStore:
    """Read-only view of the complete shards of a store (see `pipeline.store.layout`)."""

    def __init__(self, root: str, expect: dict[str, dict] | None = None, cache_mb: int = 64):
        self.root = str(root)
        self.fs = StoreFS(self.root)
        attrs = read_root_attrs(self.fs)
        if attrs is None:
            raise StoreError(f"{self.root}: no groundcache store here (run `python -m pipeline.extract` first)")
        self.encoders: dict[str, dict] = attrs["encoders"]
        if expect:
            check_specs(self.root, self.encoders, expect)
        self.index: Index = load_index(self.fs, self.encoders)
        self.cache = ChunkCache(cache_mb << 20)
        self._ids: VideoIds | None = None
        self._fields = {(g, f.name): f for g, fields in layout.groups(self.encoders) for f in fields}
        self._array_no = {key: a for a, key in enumerate((g, f.name) for g, f in layout.arrays(self.encoders))}
        self._group_no = {g: i for i, (g, _) in enumerate(layout.groups(self.encoders))}

    # ---- what is there -------------------------------------------------------------------------
    def video_ids(self) -> VideoIds:
        """Videos with at least one segment of features, sorted."""
        if self._ids is None:
            parts = self.index.live()
            if len(parts) == 1:
                run = parts[0][0]
                counts = np.diff(run.cols.full("videos.seg_off"))
                self._ids = VideoIds(run.ids, None if counts.all() else np.flatnonzero(counts))
            else:
                ids = sorted(run.ids[i] for run, live in parts for i in _live_with_segments(run, live))
                self._ids = VideoIds(ids, None)
        return self._ids

    def segments(self, video_id: str | None = None, encoder: str | None = None) -> list[dict]:
        """Segment rows (one per encoder): shard, segment_id, video_id, start, end, fps, row, n, ...
        Without a video: every video's (small stores; bulk readers use `table_parts`)."""
        vids = [video_id] if video_id is not None else self._all_video_ids()
        out = []
        for vid in vids:
            loc = self.index.locate(vid)
            if loc is not None:
                out += _segment_dicts(*loc, vid, encoder)
        return out

    def failures(self, video_id: str | None = None) -> list[FailureRecord]:
        vids = [video_id] if video_id is not None else self._all_video_ids()
        out = []
        for vid in vids:
            loc = self.index.locate(vid)
            if loc is None:
                continue
            run, i = loc
            t = run.table("failures", ("segment_id", "stage", "reason", "attempts"), *run.video(i).fail)
            out += [FailureRecord(vid, s or None, st, r, int(a)) for s, st, r, a in
                    zip(t["segment_id"], t["stage"], t["reason"], t["attempts"])]
        return out

    def source(self, video_id: str) -> dict | None:
        """The identity (size, mtime, hash) of the file the video's features came from."""
        loc = self.index.locate(video_id)
        return None if loc is None else loc[0].source(loc[1])

    def table_parts(self, table: str, columns: Sequence[str]) -> list[TablePart]:
        """Whole columns of `table` (segments, captions) per index run, for vectorised passes (the trainer)."""
        out = []
        for run, live in self.index.live():
            cols = {c: run.cols.full(f"{table}.{c}", scan=True) for c in columns}
            off = run.cols.full(f"videos.{ {'segments': 'seg', 'captions': 'cap'}[table] }_off")
            out.append(TablePart(run.ids, live, off, cols, run.kinds, run.encoders))
        return out

    # ---- features ------------------------------------------------------------------------------
    def frames(self, video_id: str, encoder: str = "clip", start: float | None = None, end: float | None = None,
               fps: float | None = None, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Features of the frames (clip) or windows (s3d) with start <= time < end, in time order.

        Returns numpy arrays: `times` [N] seconds, `global` [N, D], `grid` [N, gh, gw, D] (s3d: [N, T', 7, 7, D]
        and `valid` [N]), float16 (an int8 grid comes back as float16). `fps` keeps only segments at that rate."""
        self._check_encoder(encoder)
        loc = self.index.locate(video_id)
        rows = loc[0].video(loc[1]) if loc else None
        if rows is None or rows.seg[0] == rows.seg[1]:
            raise NotInStoreError(f"{self.root}: no features for video {video_id!r}")
        run, e = loc[0], loc[0].encoders.index(encoder)
        segs = run.table("segments", ("shard", "fps", "row", "n"), *rows.seg)
        names = list(fields or layout.frame_outputs(self.encoders[encoder]))
        names = names if "times" in names else ["times", *names]
        memo: dict = {}  # chunks decoded in this call: segments of a video share them
        parts = [self._range(run, int(segs["shard"][j]), encoder, int(segs["row"][j, e]), int(segs["n"][j, e]),
                             start, end, names, memo)
                 for j in range(len(segs["fps"])) if fps is None or abs(segs["fps"][j] - fps) < 1e-6]
        out = {k: np.concatenate([p[k] for p in parts]) if parts else self._empty(encoder, k) for k in names}
        order = np.argsort(out["times"], kind="stable")
        return out if np.all(order[:-1] < order[1:]) else {k: v[order] for k, v in out.items()}

    def frames_batch(self, requests: Iterable[tuple[str, float | None, float | None]], encoder: str = "clip",
                     fields: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
        """`frames` for many (video_id, start, end) windows."""
        return [self.frames(v, encoder, s, e, fields=fields) for v, s, e in requests]

    def caption_table(self, video_id: str) -> dict[str, np.ndarray]:
        """A video's captions without features: `caption_id`, `start`, `end` (NaN: none), `text`, `kind`."""
        return {k: v for k, v in self._caption_rows(video_id)[1].items() if k not in ("shard", "row")}

    def captions(self, video_id: str, encoder: str = "clip") -> dict[str, np.ndarray]:
        """A video's captions (`caption_table`) and the encoder's `sentence` [C, D], `words` [C, W, D], `mask` [C, W]."""
        self._check_encoder(encoder)
        run, t = self._caption_rows(video_id)
        out = {k: v for k, v in t.items() if k not in ("shard", "row")}
        group, memo = layout.text_group(encoder), {}
        for f in layout.text_fields(self.encoders[encoder]):
            out[f.name] = np.zeros((len(t["row"]), *f.shape), f.dtype)
            for shard in np.unique(t["shard"]):
                sel = t["shard"] == shard
                rows = t["row"][sel]
                lo, hi = int(rows.min()), int(rows.max()) + 1
                out[f.name][sel] = self._rows(run, int(shard), group, f, lo, hi, memo)[rows - lo]
        return out

    # ---- internals -----------------------------------------------------------------------------
    def _caption_rows(self, video_id: str) -> tuple[Run | None, dict[str, np.ndarray]]:
        loc = self.index.locate(video_id)
        if loc is None:
            return None, {"caption_id": np.zeros(0, object), "start": np.zeros(0), "end": np.zeros(0),
                          "text": np.zeros(0, object), "kind": np.zeros(0, object), "shard": np.zeros(0, np.int32),
                          "row": np.zeros(0, np.int32)}
        run, i = loc
        t = run.table("captions", CAPTION_COLS, *run.video(i).cap)
        kinds = np.array([*run.kinds, None], object)
        return run, {"caption_id": t["id"], "start": t["start"], "end": t["end"], "text": t["text"],
                     "kind": kinds[t["kind"]], "shard": t["shard"], "row": t["row"]}

    def _all_video_ids(self) -> list[str]:
        return sorted({run.ids[i] for run, live in self.index.live() for i in range(len(run))
                       if live is None or live[i]})

    def _check_encoder(self, encoder: str) -> None:
        if encoder not in self.encoders:
            raise NotInStoreError(f"{self.root}: encoder {encoder!r} not in the store (it has {sorted(self.encoders)})")

    def _field(self, encoder: str, name: str) -> layout.Field:
        return self._fields[encoder, name]

    def _range(self, run: Run, s: int, encoder: str, row: int, n: int, start, end, names, memo) -> dict:
        times = self._rows(run, s, encoder, self._field(encoder, "times"), row, row + n, memo)
        lo = 0 if start is None else int(np.searchsorted(times, start - 1e-9, side="left"))
        hi = n if end is None else int(np.searchsorted(times, end - 1e-9, side="left"))
        hi = max(lo, hi)
        out = {"times": times[lo:hi]}
        for k in names:
            if k == "times":
                continue
            values = self._rows(run, s, encoder, self._field(encoder, k), row + lo, row + hi, memo)
            if k == "grid" and values.dtype == np.int8:
                scale = self._rows(run, s, encoder, self._field(encoder, "grid_scale"), row + lo, row + hi, memo)
                values = (values.astype(np.float32) * scale.astype(np.float32)[..., None]).astype(np.float16)
            out[k] = values
        return out

    def _rows(self, run: Run, s: int, group: str, f: layout.Field, lo: int, hi: int, memo: dict) -> np.ndarray:
        """Rows [lo, hi) of one array of shard s, from checked chunks."""
        if hi <= lo:
            return np.zeros((0, *f.shape), f.dtype)
        shard = run.shard_name(s)
        have = int(run.cols.get("shards.rows", s, s + 1)[0, self._group_no[group]])
        if hi > have:
            raise StoreCorruptError(f"{self.root}: the index names rows up to {hi} of {shard}/{group}, which holds "
                                    f"{have}; rebuild the index with `python -m pipeline.upgrade --store {self.root}`")
        cr = layout.chunk_rows(f)
        first, last = lo // cr, (hi - 1) // cr
        a = self._array_no[group, f.name]
        chunks = [self._chunk(run, s, shard, a, group, f, k, memo) for k in range(first, last + 1)]
        data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        return data[lo - first * cr: hi - first * cr]

    def _chunk(self, run: Run, s: int, shard: str, a: int, group: str, f: layout.Field, k: int,
               memo: dict) -> np.ndarray:
        key = layout.chunk_key(shard, group, f, k)
        value = memo.get(key)
        if value is None:
            value = self.cache.get(key)
        if value is None:
            crc, size = run.chunk(s, a, k)
            try:
                data = self.fs.read_bytes(key)
            except FileNotFoundError:
                data = None
            check_chunk(key, data, crc, size, self.root)
            value = decode(f, data)
            self.cache.put(key, value)
        memo[key] = value
        return value

    def _empty(self, encoder: str, name: str) -> np.ndarray:
        f = self._field(encoder, name)
        dtype = np.float16 if name == "grid" else f.dtype
        return np.zeros((0, *f.shape), dtype)


def _live_with_segments(run: Run, live: np.ndarray | None) -> np.ndarray:
    has = np.diff(run.cols.full("videos.seg_off")) > 0
    return np.flatnonzero(has if live is None else has & live)


def _segment_dicts(run: Run, i: int, vid: str, encoder: str | None) -> list[dict]:
    t = run.table("segments", ("id", "shard", "start", "end", "fps", "end_actual", "truncated", "row", "n"),
                  *run.video(i).seg)
    out = []
    for j in range(len(t["id"])):
        for e, enc in enumerate(run.encoders):
            if encoder is None or enc == encoder:
                out.append({"shard": run.shard_name(int(t["shard"][j])), "segment_id": t["id"][j], "video_id": vid,
                            "start": float(t["start"][j]), "end": _opt(t["end"][j]), "fps": float(t["fps"][j]),
                            "end_actual": _opt(t["end_actual"][j]), "truncated": bool(t["truncated"][j]),
                            "encoder": enc, "row": int(t["row"][j, e]), "n": int(t["n"][j, e])})
    return out


def _opt(x) -> float | None:
    return None if np.isnan(x) else float(x)


def open_store(root: str, expect: dict[str, dict] | None = None) -> FeatureStore:
    """Open a store for reading; `expect` = {encoder: partial spec} refuses a store that differs."""
    return FeatureStore(root, expect)
