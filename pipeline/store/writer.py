"""Writing one shard: buffered, chunk-aligned appends, per-segment rollback, completion marker last."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from pipeline.store import layout
from pipeline.store.layout import Field, StoreFS


class _Column:
    """One zarr array filled by appending rows; writes only whole chunks until `close`."""

    def __init__(self, group: zarr.Group, f: Field):
        self.field, self.chunk = f, layout.chunk_rows(f)
        self.array = group.create_array(
            f.name, shape=(0, *f.shape), chunks=(self.chunk, *f.shape), dtype=f.dtype,
            compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle" if f.dtype != "bool" else "noshuffle"),
            fill_value=0)
        self.flushed = 0
        self.pending: list[np.ndarray] = []
        self.n_pending = 0

    @property
    def length(self) -> int:
        return self.flushed + self.n_pending

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.shape[1:] != self.field.shape:
            raise ValueError(f"{self.field.name}: rows of shape {rows.shape[1:]}, layout wants {self.field.shape}")
        with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
            rows = rows.astype(self.field.dtype, copy=False)
        if rows.dtype.kind == "f" and not np.isfinite(rows).all():  # also catches float16 overflow
            raise ValueError(f"{self.field.name}: non-finite values (NaN, inf or beyond float16 range)")
        self.pending.append(rows)
        self.n_pending += len(rows)
        if self.n_pending >= self.chunk:
            self._flush(whole_chunks_only=True)

    def _flush(self, whole_chunks_only: bool) -> None:
        if not self.n_pending:
            return
        data = np.concatenate(self.pending)
        n = (len(data) // self.chunk) * self.chunk if whole_chunks_only else len(data)
        if n:
            self.array.resize((self.flushed + n, *self.field.shape))
            self.array[self.flushed:self.flushed + n] = data[:n]
            self.flushed += n
        self.pending = [data[n:]] if n < len(data) else []
        self.n_pending = len(data) - n

    def truncate(self, length: int) -> None:
        """Drop rows past `length` (a failed segment); rows already on disk are re-buffered."""
        if length >= self.flushed:
            keep = length - self.flushed
            data = np.concatenate(self.pending) if self.pending else None
            self.pending = [data[:keep]] if keep else []
            self.n_pending = keep
            return
        base = (length // self.chunk) * self.chunk
        head = self.array[base:length] if length > base else None
        self.flushed, self.pending, self.n_pending = base, ([head] if head is not None else []), length - base

    def close(self) -> None:
        self._flush(whole_chunks_only=False)
        self.array.resize((self.flushed, *self.field.shape))


@dataclass
class SegmentRows:
    """Row ranges a segment occupies, per frame group; filled while the segment is written."""

    meta: dict
    start_rows: dict[str, int]
    info: dict = field(default_factory=dict)  # truncated, end_actual ... set by the producer


class ShardWriter:
    """Writes one shard. Exactly one ShardWriter may exist per shard name at a time (the planner
    guarantees it); a shard becomes visible only when `commit` writes its marker."""

    def __init__(self, root: str, name: str, specs: dict[str, dict]):
        self.fs, self.name, self.specs = StoreFS(root), name, specs
        self.fs.remove_tree(layout.shard_path(name))  # debris of an interrupted earlier attempt
        group = zarr.open_group(layout.zarr_store(root), mode="a").require_group(layout.shard_path(name))
        self.frames: dict[str, dict[str, _Column]] = {}
        self.text: dict[str, dict[str, _Column]] = {}
        for enc, spec in specs.items():
            g = group.create_group(enc, attributes={"encoder_spec": spec})
            self.frames[enc] = {f.name: _Column(g, f) for f in layout.frame_fields(spec)}
            t = group.create_group(layout.text_group(enc), attributes={"encoder_spec": spec})
            self.text[enc] = {f.name: _Column(t, f) for f in layout.text_fields(spec)}
        self.segments: list[dict] = []
        self.captions: list[dict] = []
        self.failures: list[dict] = []
        self._open: SegmentRows | None = None

    # ---- frames --------------------------------------------------------------------------------
    @contextmanager
    def segment(self, meta: dict):
        """Rows appended inside the block belong to the segment; an exception rolls them back."""
        if self._open is not None:
            raise RuntimeError("segments cannot nest")
        rows = SegmentRows(dict(meta), {enc: cols["times"].length for enc, cols in self.frames.items()})
        self._open = rows
        try:
            yield rows
        except BaseException:
            for enc, cols in self.frames.items():
                for col in cols.values():
                    col.truncate(rows.start_rows[enc])
            raise
        finally:
            self._open = None
        ranges = {enc: [rows.start_rows[enc], cols["times"].length - rows.start_rows[enc]]
                  for enc, cols in self.frames.items()}
        self.segments.append({**rows.meta, **rows.info, "rows": ranges})

    def append_frames(self, encoder: str, **arrays: np.ndarray) -> None:
        if self._open is None:
            raise RuntimeError("append_frames outside a segment")
        cols = self.frames[encoder]
        n = {len(a) for a in arrays.values()}
        if set(arrays) != set(cols) or len(n) != 1:
            raise ValueError(f"{encoder}: need equal-length {sorted(cols)}, got {sorted(arrays)} of lengths {n}")
        for k, a in arrays.items():
            cols[k].append(a)

    # ---- captions and failures -------------------------------------------------------------------
    def add_captions(self, rows: list[dict], features: dict[str, dict[str, np.ndarray]]) -> None:
        """Caption metadata rows plus, per encoder, sentence/words/mask for the same rows in order."""
        if set(features) != set(self.text):
            raise ValueError(f"caption features for {sorted(features)}, store has {sorted(self.text)}")
        first = len(self.captions)
        for enc, arrays in features.items():
            for k, col in self.text[enc].items():
                if len(arrays[k]) != len(rows):
                    raise ValueError(f"{enc}_text/{k}: {len(arrays[k])} rows for {len(rows)} captions")
                col.append(arrays[k])
        self.captions.extend({**r, "row": first + i} for i, r in enumerate(rows))

    def add_failure(self, *, video_id: str, segment_id: str | None, stage: str, reason: str,
                    attempts: int = 1) -> None:
        self.failures.append({"video_id": video_id, "segment_id": segment_id, "stage": stage,
                              "reason": reason, "attempts": attempts})

    # ---- commit ------------------------------------------------------------------------------------
    def commit(self) -> dict:
        """Flush everything, then write the marker (the shard index) as the very last object."""
        if self._open is not None:
            raise RuntimeError("commit inside an open segment")
        rows = {}
        for enc in self.frames:
            for col in (*self.frames[enc].values(), *self.text[enc].values()):
                col.close()
            rows[enc] = self.frames[enc]["times"].length
            rows[layout.text_group(enc)] = self.text[enc]["mask"].length
        index = {"schema_version": layout.SCHEMA_VERSION, "shard": self.name, "committed": time.time(),
                 "encoders": sorted(self.specs), "rows": rows, "segments": self.segments,
                 "captions": self.captions, "failures": self.failures}
        self.fs.write_json(layout.marker_path(self.name), index)
        return index
