"""Training samples from the feature store: one narration = its word tokens, mask and sentence vector plus the
U candidate frames (grid + global vectors) of the window around it, padded and masked past the video edges.

- `build_index` turns the store's caption and segment tables into narrations with a window
  [lo, lo + window_s) (centred on the narration, or from its start) that overlaps stored features.
- `EpochSampler` fixes each epoch's global batches from (seed, epoch) alone: one random narration per video
  ("per_video", the released code) or every narration ("per_narration"); rank r takes its slice of each
  global batch, and a resumed run restarts the epoch at the batch it had reached.
- `NarrationDataset` reads a batch with one `frames` range read per sample and one `captions` read per video
  (cached per worker); candidate k is the stored row nearest to lo + k / rate (within half a stored period).
  A sample depends on its narration alone, so with `data.sample_cache_mb` > 0 each process keeps the samples
  it has assembled (up to that many MB) and later epochs read them from memory instead of the store.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.store import FeatureStore, open_store
from trainer.train_config import DataConfig


class DataError(ValueError):
    """The store cannot provide training samples as configured (the message says why)."""


@dataclass(frozen=True)
class NarrationIndex:
    videos: list[str]          # video ids
    video: np.ndarray          # [N] video number of each narration
    caption_id: np.ndarray     # [N] caption ids
    lo: np.ndarray             # [N] window start, seconds (may be < 0: padded)
    center: np.ndarray         # [N] narration centre, in candidate units from lo
    rate: np.ndarray           # [N] candidate rate (candidates per second)
    stored_rate: np.ndarray    # [N] stored rows per second of the video's segments
    by_video: list[np.ndarray]  # narrations of each video, in caption order

    def __len__(self) -> int:
        return len(self.video)


def stored_rate(spec: dict, segment_fps: float) -> float:
    """Rows per second: the frame rate for per-frame encoders, windows per second for windowed ones (s3d)."""
    return float(spec["fps"]) / float(spec["window"]) if spec.get("window") else float(segment_fps)


def _video_segments(store: FeatureStore, cfg: DataConfig) -> dict[str, tuple[np.ndarray, float]]:
    """video -> (segment intervals [n, 2] in seconds, stored row rate)."""
    seg = store.index.segments.to_pydict()
    spec = store.encoders[cfg.encoder]
    out: dict[str, list] = {}
    for i, enc in enumerate(seg["encoder"]):
        fps = seg["fps"][i]
        if enc != cfg.encoder or (cfg.store_fps is not None and abs(fps - cfg.store_fps) > 1e-6):
            continue
        end = seg["end_actual"][i] if seg["end_actual"][i] is not None else seg["end"][i]
        out.setdefault(seg["video_id"][i], []).append((seg["start"][i], np.inf if end is None else end, fps))
    result = {}
    for vid, rows in out.items():
        rates = {round(stored_rate(spec, r[2]), 6) for r in rows}
        if len(rates) > 1:
            raise DataError(f"video {vid!r} has {cfg.encoder} segments at several rates {sorted(rates)}: set "
                            f"data.store_fps to the training segments' fps")
        result[vid] = (np.array([r[:2] for r in rows], np.float64), rates.pop())
    return result


def build_index(store: FeatureStore, cfg: DataConfig) -> NarrationIndex:
    """Narrations whose candidate window overlaps stored features of `cfg.encoder`."""
    if cfg.encoder not in store.encoders:
        raise DataError(f"{store.root}: no {cfg.encoder!r} features (store has {sorted(store.encoders)})")
    segments = _video_segments(store, cfg)
    cap = store.index.captions.to_pydict()
    picked: dict[str, list] = {}
    for i, vid in enumerate(cap["video_id"]):
        start, end = cap["start"][i], cap["end"][i]
        if vid not in segments or start is None or end is None or (cfg.kinds and cap["kind"][i] not in cfg.kinds):
            continue
        intervals, srate = segments[vid]
        rate = srate if cfg.fps is None else float(cfg.fps)
        if rate > srate + 1e-6:
            raise DataError(f"data.fps={cfg.fps} is above the stored rate {srate} of video {vid!r}")
        if abs(cfg.candidates / rate - cfg.window_s) > 1.0 / rate + 1e-6:
            raise DataError(f"data.candidates={cfg.candidates} at {rate:g} per second cover "
                            f"{cfg.candidates / rate:g} s, not data.window_s={cfg.window_s:g} s")
        lo = (start + end) / 2 - cfg.window_s / 2 if cfg.anchor == "center" else start
        hi = lo + cfg.candidates / rate
        if not np.any((intervals[:, 0] < hi) & (intervals[:, 1] > max(lo, 0.0))):
            continue
        picked.setdefault(vid, []).append((cap["caption_id"][i], lo, ((start + end) / 2 - lo) * rate, rate, srate))
    if not picked:
        raise DataError(f"{store.root}: no narration has {cfg.encoder} features in its window")
    videos = sorted(picked)
    rows = [(v, *r) for v, vid in enumerate(videos) for r in picked[vid]]
    video = np.array([r[0] for r in rows], np.int64)
    bounds = np.searchsorted(video, np.arange(len(videos) + 1))
    return NarrationIndex(videos, video, np.array([r[1] for r in rows], object),
                          np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
                          np.array([r[4] for r in rows]), np.array([r[5] for r in rows]),
                          [np.arange(bounds[k], bounds[k + 1]) for k in range(len(videos))])


class EpochSampler(Sampler[list[int]]):
    """Yields this rank's share of each global batch of an epoch (drop_last); see the module docstring."""

    def __init__(self, index: NarrationIndex, cfg: DataConfig, seed: int, rank: int = 0, world: int = 1):
        if cfg.batch_size % world:
            raise DataError(f"data.batch_size={cfg.batch_size} is not divisible by {world} processes")
        self.index, self.cfg, self.seed, self.rank, self.world = index, cfg, seed, rank, world
        self.epoch, self.start = 0, 0
        if self.steps_per_epoch == 0:
            n = len(index.videos) if cfg.sampling == "per_video" else len(index)
            raise DataError(f"{n} {'videos' if cfg.sampling == 'per_video' else 'narrations'} per epoch: fewer "
                            f"than one batch of {cfg.batch_size} (lower data.batch_size or use per_narration)")

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.index.videos) if self.cfg.sampling == "per_video" else len(self.index)
        return n // self.cfg.batch_size

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """Global batches [steps, batch_size] of narration indices; a function of (seed, epoch) only."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.cfg.sampling == "per_video":
            picks = np.array([v[rng.integers(len(v))] for v in self.index.by_video])
            order = picks[rng.permutation(len(picks))]
        else:
            order = rng.permutation(len(self.index))
        b = self.cfg.batch_size
        return order[: self.steps_per_epoch * b].reshape(-1, b)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch

    def __iter__(self):
        share = self.cfg.batch_size // self.world
        for batch in self.epoch_batches(self.epoch)[self.start:]:
            yield batch[self.rank * share:(self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start)


def place_rows(times: np.ndarray, lo: float, rate: float, stored: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row of each candidate slot or -1 [n], slot mask [n]): slot k takes the row nearest lo + k / rate if
    it lies within half a stored period of it."""
    slots = lo + np.arange(n) / rate
    if len(times) == 0:
        return np.full(n, -1), np.zeros(n, bool)
    pos = np.clip(np.searchsorted(times, slots), 1, len(times) - 1) if len(times) > 1 else np.zeros(n, np.int64)
    nearest = np.where(np.abs(times[pos - 1] - slots) <= np.abs(times[pos] - slots), pos - 1, pos) \
        if len(times) > 1 else pos
    half = 0.5 / stored
    ok = (times[nearest] - slots >= -half - 1e-9) & (times[nearest] - slots < half - 1e-9)
    return np.where(ok, nearest, -1), ok


class NarrationDataset(Dataset):
    """Samples by narration index; opens the store lazily in each process (DataLoader workers)."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        self.root, self.index, self.cfg = str(root), index, cfg
        self._store: FeatureStore | None = None
        self._pid = -1
        self._captions: OrderedDict[str, dict] = OrderedDict()
        self._samples: dict[int, dict[str, np.ndarray]] = {}
        self._sample_bytes = 0

    def __len__(self) -> int:
        return len(self.index)

    def store(self) -> FeatureStore:
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid, self._captions = open_store(self.root), os.getpid(), OrderedDict()
            self._samples, self._sample_bytes = {}, 0
        return self._store

    def captions(self, video_id: str) -> dict:
        """A video's caption features, row by caption id (an LRU of `caption_cache` videos per process)."""
        if video_id in self._captions:
            self._captions.move_to_end(video_id)
            return self._captions[video_id]
        caps = self.store().captions(video_id, self.cfg.encoder)
        entry = {"row": {cid: i for i, cid in enumerate(caps["caption_id"])},
                 **{k: caps[k] for k in ("sentence", "words", "mask")}}
        self._captions[video_id] = entry
        while len(self._captions) > max(1, self.cfg.caption_cache):
            self._captions.popitem(last=False)
        return entry

    def _with_words(self, i: int, caps: dict) -> tuple[int, bool]:
        """The narration itself, or (a narration without any word token) the next one of the same video that
        has some, as the released loader resamples such captions; (index, substituted)."""
        ring = self.index.by_video[self.index.video[i]]
        start = int(np.searchsorted(ring, i))
        for k in range(len(ring)):
            j = int(ring[(start + k) % len(ring)])
            if caps["mask"][caps["row"][self.index.caption_id[j]]].any():
                return j, j != i
        return i, False

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """One sample (arrays without the batch axis)."""
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        """A whole batch [B, ...], each sample written straight into preallocated (zeroed) arrays."""
        out = self._empty(len(indices))
        for b, i in enumerate(indices):
            cached = self._samples.get(int(i))
            if cached is None:
                self._fill(out, b, int(i))
                self._remember(int(i), out, b)
            else:
                for key, value in cached.items():
                    out[key][b] = value
        return out

    def _remember(self, i: int, out: dict[str, np.ndarray], b: int) -> None:
        """Keep sample b of a batch for later epochs while the data.sample_cache_mb budget allows."""
        size = sum(v[b].nbytes for v in out.values())
        if self._sample_bytes + size <= self.cfg.sample_cache_mb * 2**20:
            self._samples[i] = {k: v[b].copy() for k, v in out.items()}
            self._sample_bytes += size

    def _empty(self, n: int) -> dict[str, np.ndarray]:
        spec, u = self.store().encoders[self.cfg.encoder], self.cfg.candidates
        d, w = spec["dims"], spec["max_words"]
        return {"grid": np.zeros((n, u, *spec["grid"], d["grid"]), np.float16),
                "global": np.zeros((n, u, d["global"]), np.float16), "frame_mask": np.zeros((n, u), bool),
                "words": np.zeros((n, w, d["words"]), np.float16), "word_mask": np.zeros((n, w), bool),
                "sentence": np.zeros((n, d["sentence"]), np.float16), "center": np.zeros(n, np.float32),
                "index": np.zeros(n, np.int64), "substituted": np.zeros(n, bool), "empty_text": np.zeros(n, bool)}

    def _fill(self, out: dict[str, np.ndarray], b: int, i: int) -> None:
        ix, cfg = self.index, self.cfg
        video_id = ix.videos[ix.video[i]]
        caps = self.captions(video_id)
        j, substituted = self._with_words(i, caps)
        row = caps["row"][ix.caption_id[j]]
        lo, rate, stored = float(ix.lo[j]), float(ix.rate[j]), float(ix.stored_rate[j])
        half = 0.5 / stored
        got = self.store().frames(video_id, cfg.encoder, start=lo - half, end=lo + cfg.candidates / rate + half,
                                  fps=cfg.store_fps, fields=("global", "grid"))
        rows, mask = place_rows(got["times"], lo, rate, stored, cfg.candidates)
        out["grid"][b, mask] = got["grid"][rows[mask]]
        out["global"][b, mask] = got["global"][rows[mask]]
        out["frame_mask"][b] = mask
        out["words"][b], out["word_mask"][b] = caps["words"][row], caps["mask"][row]
        out["sentence"][b], out["center"][b], out["index"][b] = caps["sentence"][row], ix.center[j], j
        out["substituted"][b], out["empty_text"][b] = substituted, not caps["mask"][row].any()


def collate(batch: dict[str, np.ndarray] | list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """A batch from `__getitems__` (already stacked) or a list of `__getitem__` samples, as tensors."""
    if isinstance(batch, list):
        batch = {k: np.stack([s[k] for s in batch]) for k in batch[0]}
    return {k: torch.from_numpy(v) for k, v in batch.items()}


def make_loader(dataset: NarrationDataset, sampler: EpochSampler, workers: int, prefetch: int,
                pin_memory: bool = False) -> DataLoader:
    # Each iterator draws a base seed from its generator; with the global RNG that draw would shift the model's
    # own random draws (dropout, loss sampling) whenever a resumed run makes an extra iterator, breaking --resume.
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory, prefetch_factor=prefetch if workers > 0 else None,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
