"""Training samples from the feature store: one narration = its word tokens, mask and sentence vector plus the
U candidate frames (grid + global vectors) of the window around it, padded and masked past the video edges.

- `trainer.narrations.build_index` counts each video's narrations (windows [lo, lo + window_s), centred on the
  narration or from its start, that overlap stored features) without an object per narration.
- `EpochSampler` fixes each epoch's global batches from (seed, epoch) alone: one random narration per video
  ("per_video", the released code) or every narration ("per_narration"); rank r takes its slice of each
  global batch, and a resumed run restarts the epoch at the batch it had reached.
- `NarrationDataset` reads a batch with one `frames` range read per sample and one `captions` read per video
  (cached per worker, with the video's narrations); candidate k is the stored row nearest to lo + k / rate
  (within half a stored period). A sample depends on its narration alone, so with `data.sample_cache_mb` > 0
  each process keeps the samples it has assembled (up to that many MB) and later epochs read them from memory.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.store import FeatureStore, open_store
from trainer.narrations import DataError, NarrationIndex, VideoNarrations, build_index, video_narrations
from trainer.train_config import DataConfig

__all__ = ["DataError", "NarrationIndex", "build_index", "EpochSampler", "NarrationDataset", "place_rows",
           "collate", "make_loader", "to_device"]


class EpochSampler(Sampler[list[int]]):
    """Yields this rank's share of each global batch of an epoch (drop_last); see the module docstring."""

    def __init__(self, index: NarrationIndex, cfg: DataConfig, seed: int, rank: int = 0, world: int = 1):
        if cfg.batch_size % world:
            raise DataError(f"data.batch_size={cfg.batch_size} is not divisible by {world} processes")
        self.index, self.cfg, self.seed, self.rank, self.world = index, cfg, seed, rank, world
        self.epoch, self.start = 0, 0
        if self.steps_per_epoch == 0:
            n = len(index.first) - 1 if cfg.sampling == "per_video" else len(index)
            raise DataError(f"{n} {'videos' if cfg.sampling == 'per_video' else 'narrations'} per epoch: fewer "
                            f"than one batch of {cfg.batch_size} (lower data.batch_size or use per_narration)")

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.index.first) - 1 if self.cfg.sampling == "per_video" else len(self.index)
        return n // self.cfg.batch_size

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """Global batches [steps, batch_size] of narration indices; a function of (seed, epoch) only."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.cfg.sampling == "per_video":
            picks = self.index.first[:-1] + rng.integers(0, self.index.counts)
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
    """Samples by narration number; opens the store lazily in each process (DataLoader workers)."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        self.root, self.index, self.cfg = str(root), index, cfg
        self._store: FeatureStore | None = None
        self._pid = -1
        self._videos: OrderedDict[int, tuple[str, dict, VideoNarrations]] = OrderedDict()
        self._samples: dict[int, dict[str, np.ndarray]] = {}
        self._sample_bytes = 0

    def __len__(self) -> int:
        return len(self.index)

    def store(self) -> FeatureStore:
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid, self._videos = open_store(self.root), os.getpid(), OrderedDict()
            self._samples, self._sample_bytes = {}, 0
        return self._store

    def locate(self, i: int) -> tuple[int, int]:
        """(video number, narration of that video) of narration i."""
        v = int(self.index.video_of(i))
        return v, i - int(self.index.first[v])

    def video(self, v: int) -> tuple[str, dict, VideoNarrations]:
        """Video v's id, caption arrays (sentence, words, mask, start, end) and narrations; an LRU of
        `data.caption_cache` videos per process."""
        store = self.store()
        if v in self._videos:
            self._videos.move_to_end(v)
            return self._videos[v]
        vid = self.index.videos[v]
        caps = store.captions(vid, self.cfg.encoder)
        nar = video_narrations(store, vid, caps, float(self.index.stored_rate[v]), self.cfg)
        if len(nar.row) != self.index.counts[v]:
            raise DataError(f"{self.root}: video {vid!r} has {len(nar.row)} narrations, the index counted "
                            f"{self.index.counts[v]}: the store changed while training; restart the run")
        entry = (vid, {k: caps[k] for k in ("sentence", "words", "mask", "start", "end")}, nar)
        self._videos[v] = entry
        while len(self._videos) > max(1, self.cfg.caption_cache):
            self._videos.popitem(last=False)
        return entry

    def _with_words(self, k: int, caps: dict, nar: VideoNarrations) -> tuple[int, bool]:
        """Narration k itself, or (one without any word token) the next one of the same video that has some,
        as the released loader resamples such captions; (narration, substituted)."""
        n = len(nar.row)
        for step in range(n):
            j = (k + step) % n
            if caps["mask"][nar.row[j]].any():
                return j, j != k
        return k, False

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
                "half_span": np.zeros(n, np.float32),
                "index": np.zeros(n, np.int64), "substituted": np.zeros(n, bool), "empty_text": np.zeros(n, bool)}

    def _fill(self, out: dict[str, np.ndarray], b: int, i: int) -> None:
        cfg = self.cfg
        v, k = self.locate(i)
        video_id, caps, nar = self.video(v)
        j, substituted = self._with_words(k, caps, nar)
        row, lo = nar.row[j], float(nar.lo[j])
        half = 0.5 / nar.stored_rate
        got = self.store().frames(video_id, cfg.encoder, start=lo - half, end=lo + cfg.candidates / nar.rate + half,
                                  fps=cfg.store_fps, fields=("global", "grid"))
        rows, mask = place_rows(got["times"], lo, nar.rate, nar.stored_rate, cfg.candidates)
        out["grid"][b, mask] = got["grid"][rows[mask]]
        out["global"][b, mask] = got["global"][rows[mask]]
        out["frame_mask"][b] = mask
        out["words"][b], out["word_mask"][b] = caps["words"][row], caps["mask"][row]
        out["sentence"][b], out["center"][b] = caps["sentence"][row], nar.center[j]
        out["half_span"][b] = (caps["end"][row] - caps["start"][row]) / 2 * nar.rate  # candidate units
        out["index"][b] = int(self.index.first[v]) + j
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
