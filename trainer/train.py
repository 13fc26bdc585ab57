"""`python -m trainer.train`: train a grounding head on cached features.

    python -m trainer.train --store STORE --out RUN_DIR --preset paper-clip [key=value ...]
    python -m trainer.train --out RUN_DIR --resume [runtime.KEY=VALUE ...]
    torchrun --nproc_per_node=N -m trainer.train --store STORE --out RUN_DIR --preset NAME   (DDP)

Presets: each method's trainer/methods/<method>/presets/*.yaml (paper-clip, paper-s3d, reference, tiny, demo,
comma, comma-demo, comma-tiny, coot, coot-tiny, wsra, wsra-tiny); a preset names its method, whose section
the config holds (`stg.*`, `comma.*`, `coot.*`, `wsra.*`); `key=value` overrides come last (`optim.lr=3e-4
stg.loss.local_group=16`); unknown keys are errors. The run directory is described in trainer.rundir. Exit
codes: 0 done, 2 bad config / store / data, 3 non-finite loss, 130 interrupted (a checkpoint of the last
finished step is saved).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pipeline.store import SpecMismatchError, StoreError, open_store
from trainer.checkpoint import (CheckpointError, checkpoint_path, load_checkpoint, prune_checkpoints, rng_state,
                                save_checkpoint, set_rng_state, step_checkpoints)
from pipeline.config import ConfigError, to_dict
from trainer.data import DataError, EpochSampler, build_index, make_loader, to_device
from trainer.distributed import World, init_world, shutdown
from trainer.methods import all_presets, build_head, get_method, load_train_config, load_train_yaml
from trainer.optim import Schedule, build_optimizer
from trainer.rundir import RunDir
from trainer.summary import RunStats
from trainer.train_config import TrainConfig
from trainer.validation import Validator, split


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops (its last checkpoint is kept)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trainer.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="feature store (required for a new run; --resume defaults to the run's)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", default="paper-clip", help=f"one of {all_presets()} or a .yaml file")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--stop-after", type=int, default=0, help="stop after this many steps of this invocation "
                   "(a checkpoint is saved; --resume continues)")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides (with --resume: runtime.* only)")
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[TrainConfig, str, dict | None]:
    """(config, store root, checkpoint state to resume from or None)."""
    out = Path(args.out)
    if not args.resume:
        if step_checkpoints(out):
            raise ConfigError(f"{out} already holds a run with checkpoints: pass --resume or another --out")
        if not args.store:
            raise ConfigError("--store is required for a new run")
        return load_train_config(args.preset, args.overrides), args.store, None
    if not (out / "config.yaml").is_file():
        raise ConfigError(f"{out}: no config.yaml, nothing to resume")
    bad = [o for o in args.overrides if not o.startswith("runtime.")]
    if bad:
        raise ConfigError(f"--resume keeps the run's config; only runtime.* overrides are allowed, got {bad}")
    cfg = load_train_yaml(out / "config.yaml", args.overrides)
    return cfg, args.store or recorded_store(out), load_checkpoint(out)


def recorded_store(out: Path) -> str:
    """The store a run was started on (its run.json), for `--resume` without --store."""
    path = out / "run.json"
    try:
        store = json.loads(path.read_text(encoding="utf-8")).get("store")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise ConfigError(f"{path}: cannot read the run's store from it ({exc}); pass --store") from None
    if not isinstance(store, str) or not store:
        raise ConfigError(f"{path}: names no store; pass --store")
    return store


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(cfg: TrainConfig, world: World) -> torch.device:
    if cfg.runtime.device == "cuda":
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    if cfg.runtime.device != "auto":
        return torch.device(cfg.runtime.device)
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def open_training_store(root: str, cfg: TrainConfig, preset: str, resume: dict | None):
    try:
        store = open_store(root, expect={cfg.data.encoder: cfg.data.expect} if cfg.data.expect else None)
    except SpecMismatchError as exc:
        raise SpecMismatchError(f"the store does not fit preset {preset!r} (data.expect): {exc}") from exc
    if cfg.data.encoder not in store.encoders:
        raise StoreError(f"{root}: no {cfg.data.encoder!r} features (store has {sorted(store.encoders)})")
    spec = store.encoders[cfg.data.encoder]
    if resume is not None and json.dumps(resume["encoder_spec"], sort_keys=True) != json.dumps(spec, sort_keys=True):
        raise SpecMismatchError(f"{root}: {cfg.data.encoder} spec differs from the one the run was trained on:\n"
                                f"  store: {spec}\n  run:   {resume['encoder_spec']}")
    return store, spec


class Trainer:
    """Builds data, model and optimiser from a config and runs the loop; see `run`."""

    def __init__(self, cfg: TrainConfig, store_root: str, run: RunDir, world: World, device: torch.device,
                 preset: str = "", resume: dict | None = None):
        self.cfg, self.run_dir, self.world, self.device = cfg, run, world, device
        store, self.spec = open_training_store(store_root, cfg, preset, resume)
        self.dims = {k: int(v) for k, v in self.spec["dims"].items()}
        index, held_out = split(build_index(store, cfg.data), cfg.optim.val_videos, cfg.seed)
        self.sampler = EpochSampler(index, cfg.data, cfg.seed, world.rank, world.size)
        method = get_method(cfg.method)
        self.dataset = method.dataset(store_root, index, cfg)
        self.validator = None if held_out is None else \
            Validator(method.dataset(store_root, held_out, cfg), held_out, cfg, world.rank, world.size)
        self.n_videos, self.n_narrations = len(index.videos), len(index)
        seed_everything(cfg.seed)  # the same initial weights on every rank and in single-process runs
        self.head = build_head(cfg, self.dims).to(device)
        model = method.step(self.head, cfg, world).to(device)
        self.model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                             find_unused_parameters=model.unused_parameters) \
            if world.size > 1 else model
        if self.validator is not None:
            self.validator.check_monitor(model)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.total_steps = cfg.optim.max_steps or cfg.optim.epochs * self.sampler.steps_per_epoch
        self.schedule = Schedule(self.optimizer, cfg.optim, self.total_steps, self.sampler.steps_per_epoch)
        self.step, self.epoch, self.batch_in_epoch, self.saved_step = 0, 0, 0, -1
        self.last_lr = self.schedule.lr()
        if resume is not None:
            self.restore(resume)
        use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext

    def restore(self, state: dict) -> None:
        try:
            self.head.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["scheduler"])
            self.step, self.epoch, self.batch_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batch"])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:  # a checkpoint of another model
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(f"{state['path']}: does not fit this run's model and optimiser ({reason})") from None

    def state(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch,
                "model": self.head.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(), "rng": rng_state(), "config": to_dict(self.cfg),
                "encoder_spec": self.spec, "dims": self.dims, "world_size": self.world.size}

    def save(self) -> Path | None:
        if not self.world.main:
            return None
        path = checkpoint_path(self.run_dir.path, self.step)
        save_checkpoint(path, self.state())
        self.saved_step = self.step
        prune_checkpoints(self.run_dir.path, self.cfg.runtime.keep_checkpoints)
        return path

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = to_device(batch, self.device)
        with self.autocast():
            terms = self.model(batch)
        loss = terms["loss"]
        if not torch.isfinite(loss.detach()):
            values = {k: float(v.detach()) for k, v in terms.items()}
            raise NonFiniteLossError(
                f"step {self.step + 1}: the loss is not finite ({values}) at lr {self.schedule.lr():.3g}. "
                f"The run stops; its last checkpoint is kept. Try a lower optim.lr or optim.clip_grad > 0.")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.clip_grad > 0:
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        self.last_lr = self.schedule.lr()
        self.optimizer.step()
        self.schedule.step()
        return terms

    def run(self, stop_after: int = 0) -> RunStats:
        """Train until `total_steps` (or `stop_after` more steps); checkpoint at the configured points."""
        rt, stats = self.cfg.runtime, RunStats(self.step, self.cfg.data.batch_size)
        workers = self.cfg.data.workers if rt.workers is None else rt.workers
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (rt.progress and self.world.main),
                   desc="train", unit="step", dynamic_ncols=True)
        done_here = 0
        loader = make_loader(self.dataset, self.sampler, workers, self.cfg.data.prefetch,
                             pin_memory=self.device.type == "cuda")  # workers persist across epochs
        try:
            while (self.step < self.total_steps and not self.schedule.stopped
                   and not (stop_after and done_here >= stop_after)):
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                waited = time.perf_counter()
                for batch in loader:
                    stats.waited(time.perf_counter() - waited)
                    terms = self.train_step(batch)
                    self.step, self.batch_in_epoch, done_here = self.step + 1, self.batch_in_epoch + 1, done_here + 1
                    bar.update(1)
                    self._after_step(terms, stats, bar)
                    if self.step >= self.total_steps or (stop_after and done_here >= stop_after):
                        break
                    waited = time.perf_counter()
                if self.batch_in_epoch >= self.sampler.steps_per_epoch:  # the epoch is complete
                    self._end_epoch(stats)
            if stats.checkpoint is None or self.saved_step != self.step:
                stats.checkpoint = self.save()
        except KeyboardInterrupt:
            stats.checkpoint, stats.interrupted = self.save(), True
        finally:
            bar.close()
            self.run_dir.close()
        stats.finish(self.step, self.step / self.sampler.steps_per_epoch)
        return stats

    def _end_epoch(self, stats: RunStats) -> None:
        """Next epoch; validation (optim.val_videos > 0): its values logged (`val_<key>`) and the monitored one
        given to the schedule (reduce-on-plateau, early stopping); the epoch-end checkpoint."""
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        if self.validator is not None:
            step_module = self.model.module if isinstance(self.model, DistributedDataParallel) else self.model
            values = self.validator.run(step_module, self.device, self.autocast)
            self.schedule.observe(values[self.cfg.optim.monitor])
            p = self.schedule.plateau
            self.run_dir.log({"step": self.step, "epoch": self.epoch, **{f"val_{k}": v for k, v in values.items()},
                              "lr_next": self.schedule.lr(), "plateau_reductions": p.reductions,
                              "stale_epochs": p.stale, "early_stopped": p.stopped})
        if not self.cfg.runtime.checkpoint_every:
            stats.checkpoint = self.save()

    def _after_step(self, terms: dict[str, torch.Tensor], stats: RunStats, bar) -> None:
        rt = self.cfg.runtime
        if self.step % max(1, rt.log_every) == 0 or self.step == self.total_steps or self.step == 1:
            values = {k: float(v.detach()) for k, v in terms.items()}
            record = {"step": self.step, "epoch": self.epoch, **{("loss" if k == "loss" else
                      k if k == "grad_norm" else f"loss_{k}"): v for k, v in values.items()},
                      "lr": self.last_lr, **stats.rates(self.step)}
            stats.logged(record)
            self.run_dir.log(record)
            bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
        if rt.checkpoint_every and self.step % rt.checkpoint_every == 0:
            stats.checkpoint = self.save()


def train(argv: list[str] | None = None) -> RunStats:
    """Run the command (raises on errors; `main` turns them into exit codes)."""
    args = parse_args(argv)
    cfg, store_root, resume = resolve(args)
    world = init_world("cuda" if torch.cuda.is_available() and cfg.runtime.device in ("auto", "cuda") else "cpu")
    try:
        device = pick_device(cfg, world)
        run = RunDir(args.out, enabled=world.main)
        trainer = Trainer(cfg, store_root, run, world, device, args.preset, resume)
        info = {"store": str(store_root), "preset": args.preset, "overrides": args.overrides,
                "world_size": world.size, "device": str(device), "encoder_spec": trainer.spec,
                "steps_per_epoch": trainer.sampler.steps_per_epoch, "total_steps": trainer.total_steps,
                "videos": trainer.n_videos, "narrations": trainer.n_narrations}
        if resume is None:
            run.start(cfg, info)
        else:
            run.note_resume(trainer.step)
        stats = trainer.run(args.stop_after)
        stats.is_main = world.main
        stats.context = {"run_dir": str(args.out), **info, "encoder_spec": None}
        return stats
    finally:
        shutdown(world)


def main(argv: list[str] | None = None) -> int:
    try:
        stats = train(argv)
    except (ConfigError, DataError, StoreError, CheckpointError) as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"trainer: stopped: {exc}", file=sys.stderr)
        return 3
    if stats.is_main:
        print(stats.report())
    return 130 if stats.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
