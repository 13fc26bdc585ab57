"""Validation on a held-out split of the training store (optim.val_videos > 0), once per epoch: the values that
reduce-on-plateau and early stopping watch (trainer.optim.Plateau, optim.monitor).

- The split: optim.val_videos of the index's videos, drawn from the seed alone (numpy default_rng([seed, 1])),
  are held out; training samples only the others. Both are `NarrationIndex`es over the same store, so a resumed
  run (same store, same seed) gets the same split.
- The items: one narration per held-out video, drawn once from the seed (per_video sampling), or every narration
  of those videos (per_narration), in index order; global batches of data.batch_size, each rank taking its share
  as in training; a last partial batch is left out (every rank must take the same number of equal batches).
- The pass: the step module in eval mode, without gradients, under a forked RNG seeded from the seed, so the
  training's random streams are untouched and the values depend on the weights alone. Its values are {"loss":
  the mean of the batches' losses} and, when the step module has `evaluate(outputs)`, what it returns from the
  outputs of its `validation_outputs(batch)` over all batches (coot: retrieval recalls). A dataset with a
  `training` attribute is switched to evaluation sampling (coot: centre frames).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.config import ConfigError
from pipeline.store.reader import VideoIds
from trainer.data import DataError, NarrationIndex, collate, to_device
from trainer.train_config import TrainConfig

SPLIT_STREAM = 1       # numpy stream of the split: default_rng([seed, 1])
ITEMS_STREAM = 2       # and of the held-out items: default_rng([seed, 2])


def subset(index: NarrationIndex, videos: np.ndarray) -> NarrationIndex:
    """The index restricted to video numbers `videos` (sorted), without an object per video."""
    counts = index.counts[videos]
    first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return NarrationIndex(VideoIds(index.videos, videos), first, np.asarray(index.stored_rate[videos], np.float64))


def split(index: NarrationIndex, n_val: int, seed: int) -> tuple[NarrationIndex, NarrationIndex | None]:
    """(training index, held-out index or None when n_val is 0)."""
    n = len(index.counts)
    if n_val == 0:
        return index, None
    if n_val >= n:
        raise ConfigError(f"optim.val_videos={n_val} holds out every one of the store's {n} videos with "
                          f"narrations: lower it")
    held = np.zeros(n, bool)
    held[np.random.default_rng([seed, SPLIT_STREAM]).permutation(n)[:n_val]] = True
    return subset(index, np.flatnonzero(~held)), subset(index, np.flatnonzero(held))


def validation_batches(index: NarrationIndex, cfg: TrainConfig, rank: int, world: int) -> list[list[int]]:
    """This rank's share of each global validation batch (module docstring)."""
    if cfg.data.sampling == "per_video":
        rng = np.random.default_rng([cfg.seed, ITEMS_STREAM])
        items = index.first[:-1] + rng.integers(0, index.counts)
    else:
        items = np.arange(len(index))
    b = cfg.data.batch_size
    if len(items) < b:
        raise DataError(f"optim.val_videos={cfg.optim.val_videos} gives {len(items)} validation items: fewer than "
                        f"one batch of data.batch_size={b} (raise optim.val_videos)")
    share = b // world
    batches = items[: len(items) // b * b].reshape(-1, b)
    return [batch[rank * share:(rank + 1) * share].tolist() for batch in batches]


@contextmanager
def evaluating(module: torch.nn.Module, seed: int, device: torch.device):
    """Eval mode, no gradients, the RNG forked (and seeded); the module's mode is restored after."""
    was = module.training
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        module.eval()
        try:
            yield
        finally:
            module.train(was)


class Validator:
    """The validation pass of one run (module docstring)."""

    def __init__(self, dataset, index: NarrationIndex, cfg: TrainConfig, rank: int, world: int):
        if hasattr(dataset, "training"):
            dataset.training = False
        self.dataset, self.cfg = dataset, cfg
        self.batches = validation_batches(index, cfg, rank, world)
        self.videos = len(index.counts)

    def keys(self, step_module) -> tuple[str, ...]:
        return ("loss", *getattr(step_module, "validation_keys", ()))

    def check_monitor(self, step_module) -> None:
        keys = self.keys(step_module)
        if self.cfg.optim.monitor not in keys:
            raise ConfigError(f"optim.monitor={self.cfg.optim.monitor!r} is not a validation value of method "
                              f"{self.cfg.method!r} (one of {list(keys)})")

    def run(self, step_module, device: torch.device, autocast) -> dict[str, float]:
        """{"loss": mean validation loss, **step_module.evaluate(...)} for the current weights."""
        loader = DataLoader(self.dataset, batch_sampler=self.batches, num_workers=0, collate_fn=collate)
        losses, outputs = [], []
        has_eval = hasattr(step_module, "evaluate")
        with evaluating(step_module, self.cfg.seed, device):
            for batch in loader:
                batch = to_device(batch, device)
                with autocast():
                    losses.append(float(step_module(batch)["loss"]))
                    if has_eval:
                        outputs.append(step_module.validation_outputs(batch))
            values = {"loss": float(np.mean(losses))}
            if has_eval:
                values.update(step_module.evaluate(outputs))
        return values
