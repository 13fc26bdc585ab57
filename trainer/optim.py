"""Optimiser and learning-rate schedule: linear warmup from 0 (optim.warmup_steps, or optim.warmup_epochs x the
loader's steps per epoch), then per step a half-cosine to 0, a constant lr, or (`plateau`) the lr reduced by
optim.plateau_factor whenever the validation value (trainer.validation, once per epoch) stops improving; and
early stopping after optim.early_stop epochs without improvement. `Schedule.state_dict` holds all of it (the
plateau and early-stopping counters too), so a resumed run continues exactly.
"""
from __future__ import annotations

import math

import torch

from trainer.train_config import OptimConfig


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "radam":
        return torch.optim.RAdam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the base lr for the update after `step` completed updates (the code's
    get_cosine_schedule_with_warmup: step / warmup during warmup, then 0.5 (1 + cos(pi progress)));
    `constant` and `plateau` stay at 1 after warmup (plateau reductions are applied by `Schedule`)."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule in ("constant", "plateau"):
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def warmup_steps(cfg: OptimConfig, steps_per_epoch: int) -> int:
    """Warmup length in updates: optim.warmup_steps, or optim.warmup_epochs x steps per epoch (rounded)."""
    if cfg.warmup_epochs > 0:
        return int(round(cfg.warmup_epochs * steps_per_epoch))
    return cfg.warmup_steps


class Plateau:
    """Reduce-on-plateau and early stopping over one validation value per epoch.

    The reduction rule is torch.optim.lr_scheduler.ReduceLROnPlateau's (mode min/max, threshold_mode "rel"):
    a value improves when it beats the best by more than threshold x |best|; each epoch without improvement
    adds one bad epoch (none count during a cooldown); more than `patience` bad epochs multiply the lr by
    `factor` and start a cooldown of `cooldown` epochs. Early stopping counts the epochs since the best value
    (`stale`) and stops when it reaches `early_stop` (0: never)."""

    def __init__(self, cfg: OptimConfig):
        self.cfg = cfg
        self.best = math.inf if cfg.monitor_mode == "min" else -math.inf
        self.bad = self.cooldown = self.reductions = self.stale = self.epochs = 0
        self.stopped = False

    def improves(self, value: float) -> bool:
        if math.isinf(self.best):
            return math.isfinite(value) or value != self.best
        margin = self.cfg.plateau_threshold * abs(self.best)
        return value < self.best - margin if self.cfg.monitor_mode == "min" else value > self.best + margin

    def observe(self, value: float) -> None:
        """One epoch's validation value: updates the best, the counters, the reductions and `stopped`."""
        self.epochs += 1
        if not math.isnan(value) and self.improves(value):
            self.best, self.bad, self.stale = float(value), 0, 0
        else:
            self.bad, self.stale = self.bad + 1, self.stale + 1
        if self.cfg.schedule == "plateau":
            if self.cooldown > 0:
                self.cooldown, self.bad = self.cooldown - 1, 0
            if self.bad > self.cfg.plateau_patience:
                self.reductions, self.cooldown, self.bad = self.reductions + 1, self.cfg.plateau_cooldown, 0
        if self.cfg.early_stop and self.stale >= self.cfg.early_stop:
            self.stopped = True

    @property
    def scale(self) -> float:
        return self.cfg.plateau_factor ** self.reductions if self.cfg.schedule == "plateau" else 1.0

    def state_dict(self) -> dict:
        return {"best": float(self.best), "bad": self.bad, "cooldown": self.cooldown, "reductions": self.reductions,
                "stale": self.stale, "epochs": self.epochs, "stopped": self.stopped}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.bad, self.cooldown, self.reductions = int(state["bad"]), int(state["cooldown"]), int(state["reductions"])
        self.stale, self.epochs, self.stopped = int(state["stale"]), int(state["epochs"]), bool(state["stopped"])


class Schedule:
    """Sets each param group's lr before an update; its state is the count of completed updates, the warmup
    length and the plateau / early-stopping state."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, steps_per_epoch: int = 1):
        self.optimizer, self.cfg, self.total, self.step_count = optimizer, cfg, total_steps, 0
        self.warmup = warmup_steps(cfg, steps_per_epoch)
        self.plateau = Plateau(cfg)
        self.apply()

    def lr(self) -> float:
        return self.cfg.lr * lr_factor(self.step_count, self.warmup, self.total, self.cfg.schedule) * self.plateau.scale

    def apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()

    def step(self) -> None:
        self.step_count += 1
        self.apply()

    def observe(self, value: float) -> None:
        """An epoch's validation value (reduce-on-plateau, early stopping); see `Plateau`."""
        self.plateau.observe(value)
        self.apply()

    @property
    def stopped(self) -> bool:
        return self.plateau.stopped

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "total": self.total, "warmup": self.warmup,
                "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.total = int(state["step_count"]), int(state["total"])
        self.warmup = int(state.get("warmup", self.warmup))       # checkpoints before warmup_epochs: recomputed
        if "plateau" in state:                                    # checkpoints before reduce-on-plateau: fresh
            self.plateau.load_state_dict(state["plateau"])
        self.apply()
