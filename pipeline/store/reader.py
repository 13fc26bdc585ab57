"""Reading the store: a video's or a time range's features with their timestamps in one call."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from pipeline.store import layout
from pipeline.store.index import StoreIndex, load_index
from pipeline.store.layout import StoreFS
from pipeline.store.root import StoreError, check_specs, read_root_attrs


class NotInStoreError(KeyError):
    """The store holds no features for what was asked (a video id, an encoder)."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])


@dataclass(frozen=True)
class FailureRecord:
    video_id: str
    segment_id: str | None
    stage: str
    reason: str
    attempts: int = 1


class FeatureStore:
    """Read-only view of the complete shards of a store (see `pipeline.store.layout`)."""

    def __init__(self, root: str, expect: dict[str, dict] | None = None):
        self.root = str(root)
        self.fs = StoreFS(self.root)
        attrs = read_root_attrs(self.root)
        if attrs is None:
            raise StoreError(f"{self.root}: no groundcache store here (run `python -m pipeline.extract` first)")
        self.encoders: dict[str, dict] = attrs["encoders"]
        if expect:
            check_specs(self.root, self.encoders, expect)
        self.index: StoreIndex = load_index(self.fs)
        self._zroot = zarr.open_group(layout.zarr_store(self.root), mode="r")
        self._arrays: dict[tuple[str, str, str], zarr.Array] = {}
        self._seg_by_video = self.index.by_video("segments")
        self._cap_by_video = self.index.by_video("captions")
        seg = self.index.segments
        self._seg_cols = {k: seg.column(k).to_numpy(zero_copy_only=False) for k in seg.column_names}
        cap = self.index.captions
        self._cap_cols = {k: cap.column(k).to_numpy(zero_copy_only=False) for k in cap.column_names}

    # ---- what is there -------------------------------------------------------------------------
    def video_ids(self) -> list[str]:
        """Videos with at least one segment of features."""
        return sorted(self._seg_by_video)

    def segments(self, video_id: str | None = None, encoder: str | None = None) -> list[dict]:
        """Segment rows (one per encoder): shard, segment_id, video_id, start, end, fps, row, n, ..."""
        table = self.index.segments
        if video_id is not None:
            table = table.take(self._seg_by_video.get(video_id, np.zeros(0, np.int64)))
        return [r for r in table.to_pylist() if encoder is None or r["encoder"] == encoder]

    def failures(self) -> list[FailureRecord]:
        return [FailureRecord(**{k: v for k, v in r.items() if k != "shard"})
                for r in self.index.failures.to_pylist()]

    # ---- features ------------------------------------------------------------------------------
    def frames(self, video_id: str, encoder: str = "clip", start: float | None = None, end: float | None = None,
               fps: float | None = None, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Features of the frames (clip) or windows (s3d) with start <= time < end, in time order.

        Returns numpy arrays: `times` [N] seconds, `global` [N, D], `grid` [N, gh, gw, D] (s3d: [N, T', 7, 7, D]
        and `valid` [N]), float16 as stored. `fps` keeps only segments sampled at that rate."""
        self._check_encoder(encoder)
        rows = self._seg_by_video.get(video_id)
        if rows is None:
            raise NotInStoreError(f"{self.root}: no features for video {video_id!r}")
        c = self._seg_cols
        picks = [i for i in rows if c["encoder"][i] == encoder and (fps is None or abs(c["fps"][i] - fps) < 1e-6)]
        names = list(fields or [f.name for f in layout.frame_fields(self.encoders[encoder])])
        names = names if "times" in names else ["times", *names]
        parts = [self._read_range(c["shard"][i], encoder, int(c["row"][i]), int(c["n"][i]), start, end, names)
                 for i in picks]
        out = {k: np.concatenate([p[k] for p in parts]) if parts else self._empty(encoder, k) for k in names}
        order = np.argsort(out["times"], kind="stable")
        return out if np.all(order[:-1] < order[1:]) else {k: v[order] for k, v in out.items()}

    def frames_batch(self, requests: Iterable[tuple[str, float | None, float | None]], encoder: str = "clip",
                     fields: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
        """`frames` for many (video_id, start, end) windows; arrays stay open across the batch."""
        return [self.frames(v, encoder, s, e, fields=fields) for v, s, e in requests]

    def captions(self, video_id: str, encoder: str = "clip") -> dict[str, np.ndarray]:
        """A video's captions: `caption_id`, `start`, `end`, `text`, `kind` and the encoder's
        `sentence` [C, D], `words` [C, W, D], `mask` [C, W]."""
        self._check_encoder(encoder)
        rows = self._cap_by_video.get(video_id, np.zeros(0, np.int64))
        c = self._cap_cols
        meta = {k: c[k][rows] for k in ("caption_id", "start", "end", "text", "kind")}
        group = layout.text_group(encoder)
        feats: dict[str, list[np.ndarray]] = {f.name: [] for f in layout.text_fields(self.encoders[encoder])}
        for shard in dict.fromkeys(c["shard"][rows]):  # captions of a video live in one shard, in order
            sel = np.sort(c["row"][rows][c["shard"][rows] == shard])
            for name in feats:
                feats[name].append(self._array(shard, group, name).get_orthogonal_selection((sel,)))
        spec_fields = {f.name: f for f in layout.text_fields(self.encoders[encoder])}
        return {**meta, **{k: np.concatenate(v) if v else np.zeros((0, *spec_fields[k].shape), spec_fields[k].dtype)
                           for k, v in feats.items()}}

    # ---- internals -----------------------------------------------------------------------------
    def _check_encoder(self, encoder: str) -> None:
        if encoder not in self.encoders:
            raise NotInStoreError(f"{self.root}: encoder {encoder!r} not in the store (it has {sorted(self.encoders)})")

    def _array(self, shard: str, group: str, name: str) -> zarr.Array:
        key = (shard, group, name)
        if key not in self._arrays:
            self._arrays[key] = self._zroot[f"{layout.shard_path(shard)}/{group}/{name}"]
        return self._arrays[key]

    def _read_range(self, shard: str, encoder: str, row: int, n: int, start, end, names) -> dict[str, np.ndarray]:
        times = self._array(shard, encoder, "times")[row:row + n]
        lo = 0 if start is None else int(np.searchsorted(times, start - 1e-9, side="left"))
        hi = n if end is None else int(np.searchsorted(times, end - 1e-9, side="left"))
        hi = max(lo, hi)
        return {k: times[lo:hi] if k == "times" else self._array(shard, encoder, k)[row + lo:row + hi] for k in names}

    def _empty(self, encoder: str, name: str) -> np.ndarray:
        f = {f.name: f for f in layout.frame_fields(self.encoders[encoder])}[name]
        return np.zeros((0, *f.shape), f.dtype)


def open_store(root: str, expect: dict[str, dict] | None = None) -> FeatureStore:
    """Open a store for reading; `expect` = {encoder: partial spec} refuses a store that differs."""
    return FeatureStore(root, expect)
