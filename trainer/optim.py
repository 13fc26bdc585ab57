"""Optimiser and per-step learning-rate schedule (linear warmup from 0, then half-cosine to 0 or constant)."""
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
    get_cosine_schedule_with_warmup: step / warmup during warmup, then 0.5 (1 + cos(pi progress)))."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


class Schedule:
    """Sets each param group's lr before an update; its state is the count of completed updates."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
        self.optimizer, self.cfg, self.total, self.step_count = optimizer, cfg, total_steps, 0
        self.apply()

    def lr(self) -> float:
        return self.cfg.lr * lr_factor(self.step_count, self.cfg.warmup_steps, self.total, self.cfg.schedule)

    def apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()

    def step(self) -> None:
        self.step_count += 1
        self.apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.total = int(state["step_count"]), int(state["total"])
        self.apply()
