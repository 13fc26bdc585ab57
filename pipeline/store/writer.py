"""Writing one shard: chunk-aligned appends, per-segment rollback, checksums, completion marker last.

Order of a shard's life (each step safe to kill):
1. `inflight/<shard>` is created: from now on the shard's directory is debris of ours until step 4;
2. chunks are written as they fill (each chunk's CRC-32C and size kept), arrays' zarr metadata at commit;
3. the marker `shards/<shard>/_COMPLETE.json`: the shard's index (segments, captions, failures, the sources
   of its videos, the specs, every chunk's checksum);
4. `journal/<shard>`, which makes the shard visible to readers, then `inflight/<shard>` is removed.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import zarr
from zarr.storage import MemoryStore

from pipeline.store import layout
from pipeline.store.chunks import crc32c, decode, encode, zarr_compressor
from pipeline.store.errors import StoreError
from pipeline.store.fs import StoreFS
from pipeline.store.layout import Field


class _Column:
    """One array filled by appending rows; writes whole chunks until `close`, remembering their checksums."""

    def __init__(self, fs: StoreFS, shard: str, group: str, f: Field):
        self.fs, self.shard, self.group, self.field = fs, shard, group, f
        self.chunk = layout.chunk_rows(f)
        self.flushed = 0
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.sums: list[tuple[int, int]] = []  # (crc32c, size) per chunk

    @property
    def length(self) -> int:
        return self.flushed + self.n_pending

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.shape[1:] != self.field.shape:
            raise ValueError(f"{self.field.name}: rows of shape {rows.shape[1:]}, layout wants {self.field.shape}")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf, refused just below
            rows = rows.astype(self.field.dtype, copy=False)
        if rows.dtype.kind == "f" and not np.isfinite(rows).all():  # also catches float16 overflow
            raise ValueError(f"{self.field.name}: non-finite values (NaN, inf or beyond float16 range)")
        self.pending.append(rows)
        self.n_pending += len(rows)
        if self.n_pending >= self.chunk:
            self._flush(whole_chunks_only=True)

    def _write_chunk(self, k: int, rows: np.ndarray, batch: dict | None = None) -> None:
        data = encode(self.field, rows)
        key = layout.chunk_key(self.shard, self.group, self.field, k)
        if batch is None:
            self.fs.write_bytes(key, data, durable=False)
        else:
            batch[key] = data
        del self.sums[k:]
        self.sums.append((crc32c(data), len(data)))

    def _flush(self, whole_chunks_only: bool, batch: dict | None = None) -> None:
        if not self.n_pending:
            return
        data = np.concatenate(self.pending)
        n = (len(data) // self.chunk) * self.chunk if whole_chunks_only else len(data)
        for start in range(0, n, self.chunk):
            self._write_chunk((self.flushed + start) // self.chunk, data[start:start + self.chunk], batch)
        self.flushed += n
        self.pending = [data[n:]] if n < len(data) else []
        self.n_pending = len(data) - n

    def truncate(self, length: int) -> None:
        """Drop rows past `length` (a failed segment); rows already written are read back into the buffer."""
        if length >= self.flushed:
            keep = length - self.flushed
            data = np.concatenate(self.pending) if self.pending else None
            self.pending = [data[:keep]] if keep else []
            self.n_pending = keep
            return
        k = length // self.chunk
        base = k * self.chunk
        head = None
        if length > base:
            raw = self.fs.read_bytes(layout.chunk_key(self.shard, self.group, self.field, k))
            head = decode(self.field, raw)[: length - base].copy()
        for stale in range(k, len(self.sums)):
            self.fs.remove(layout.chunk_key(self.shard, self.group, self.field, stale))
        del self.sums[k:]
        self.flushed, self.pending, self.n_pending = base, ([head] if head is not None else []), length - base

    def close(self, batch: dict) -> None:
        """The last chunks go into `batch` (written with the shard's metadata, concurrently on object stores)."""
        self._flush(whole_chunks_only=False, batch=batch)


def quantize(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 tokens and their float16 absmax scale (value = int8 * scale), per token along the last axis."""
    x = np.asarray(grid, np.float32)
    scale = (np.abs(x).max(axis=-1) / 127.0).astype(np.float16)
    s = scale.astype(np.float32)[..., None]
    q = np.divide(x, s, out=np.zeros_like(x), where=s > 0)
    return np.clip(np.rint(q), -127, 127).astype(np.int8), scale


@dataclass
class SegmentRows:
    """Row ranges a segment occupies, per frame group; filled while the segment is written."""

    meta: dict
    start_rows: dict[str, int]
    info: dict = field(default_factory=dict)  # truncated, end_actual ... set by the producer


class ShardWriter:
    """Writes one shard. Exactly one ShardWriter may exist per shard name at a time (the planner
    guarantees it); a shard becomes visible only when `commit` has written its marker and journal entry."""

    def __init__(self, root: str, name: str, specs: dict[str, dict]):
        self.root, self.fs, self.name, self.specs = root, StoreFS(root), name, specs
        if self.fs.exists(layout.marker_path(name)):
            raise StoreError(f"{self.fs.path(layout.shard_path(name))}: already a complete shard; not overwritten")
        if self.fs.exists(layout.inflight_path(name)):  # an earlier attempt of this very shard was interrupted
            self.fs.remove_tree(layout.shard_path(name))
        self.fs.write_bytes(layout.inflight_path(name), b"")
        self.frames: dict[str, dict[str, _Column]] = {}
        self.text: dict[str, dict[str, _Column]] = {}
        for enc, spec in specs.items():
            self.frames[enc] = {f.name: _Column(self.fs, name, enc, f) for f in layout.frame_fields(spec)}
            group = layout.text_group(enc)
            self.text[enc] = {f.name: _Column(self.fs, name, group, f) for f in layout.text_fields(spec)}
        self.segments: list[dict] = []
        self.captions: list[dict] = []
        self.failures: list[dict] = []
        self.videos: dict[str, dict | None] = {}
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
        self.videos.setdefault(rows.meta["video_id"], None)

    def append_frames(self, encoder: str, **arrays: np.ndarray) -> None:
        if self._open is None:
            raise RuntimeError("append_frames outside a segment")
        cols = self.frames[encoder]
        if "grid_scale" in cols and "grid" in arrays:
            arrays["grid"], arrays["grid_scale"] = quantize(arrays["grid"])
        n = {len(a) for a in arrays.values()}
        if set(arrays) != set(cols) or len(n) != 1:
            raise ValueError(f"{encoder}: need equal-length {sorted(cols)}, got {sorted(arrays)} of lengths {n}")
        for k, a in arrays.items():
            cols[k].append(a)

    # ---- captions, failures, sources -------------------------------------------------------------
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
        for r in rows:
            self.videos.setdefault(r["video_id"], None)

    def add_failure(self, *, video_id: str, segment_id: str | None, stage: str, reason: str,
                    attempts: int = 1) -> None:
        self.failures.append({"video_id": video_id, "segment_id": segment_id, "stage": stage,
                              "reason": reason, "attempts": attempts})
        self.videos.setdefault(video_id, None)

    def set_source(self, video_id: str, identity: dict | None) -> None:
        """The identity of the file the video was extracted from (`pipeline.sources`); None: unreadable."""
        self.videos[video_id] = identity

    # ---- commit ------------------------------------------------------------------------------------
    def commit(self) -> dict:
        """Flush, write the arrays' metadata, the marker, then the journal entry (see the module docstring)."""
        if self._open is not None:
            raise RuntimeError("commit inside an open segment")
        rows, chunks, batch = {}, {}, {}
        for enc in self.frames:
            for group, cols in ((enc, self.frames[enc]), (layout.text_group(enc), self.text[enc])):
                for col in cols.values():
                    col.close(batch)
                    chunks[f"{group}/{col.field.name}"] = [list(s) for s in col.sums]
                rows[group] = next(iter(cols.values())).length
        self.fs.write_many({**batch, **self._zarr_metadata(rows)})
        marker = {"format": layout.SCHEMA_VERSION, "shard": self.name, "committed": time.time(),
                  "specs": self.specs, "rows": rows, "chunks": chunks, "videos": self.videos,
                  "segments": self.segments, "captions": self.captions, "failures": self.failures}
        self.fs.write_json(layout.marker_path(self.name), marker)
        self.fs.write_bytes(layout.journal_path(self.name), b"")
        self.fs.remove(layout.inflight_path(self.name))
        return marker

    def _zarr_metadata(self, rows: dict[str, int]) -> dict[str, bytes]:
        """zarr.json of the shard's groups (with their spec) and arrays (with their final shape), made by zarr
        itself in memory so that they can be written in one batch."""
        made: dict = {}
        shard = zarr.open_group(MemoryStore(made), mode="a").require_group(layout.shard_path(self.name))
        for group, fields in layout.groups(self.specs):
            g = shard.create_group(group, attributes={"encoder_spec": self.specs[group.removesuffix("_text")]})
            for f in fields:
                g.create_array(f.name, shape=(rows[group], *f.shape), chunks=(layout.chunk_rows(f), *f.shape),
                               dtype=f.dtype, compressors=zarr_compressor(f), fill_value=0)
        # the store root's own zarr.json (with the store's attrs) is never rewritten here
        return {k: v.to_bytes() for k, v in made.items() if k != layout.ROOT_META}


def clear_inflight(root: str) -> dict[str, int]:
    """Settle the shards an interrupted run left in `inflight/`: a shard with its marker was complete (its
    journal entry is written if the kill came before it); one without is debris of ours and is removed."""
    fs = StoreFS(root)
    done = {"recovered": 0, "removed": 0}
    for name in fs.list_names(layout.INFLIGHT_DIR):
        if not layout.is_shard_name(name):
            continue
        if fs.exists(layout.marker_path(name)):
            if not fs.exists(layout.journal_path(name)):
                fs.write_bytes(layout.journal_path(name), b"")
            done["recovered"] += 1
        else:
            fs.remove_tree(layout.shard_path(name))
            done["removed"] += 1
        fs.remove(layout.inflight_path(name))
    return done
