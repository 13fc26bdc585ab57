"""Checkpoints: plain containers of tensors (loadable with `torch.load(weights_only=True)`), and loading a
trained head back for evaluation.

    from trainer.checkpoint import load_trained
    trained = load_trained("runs/paper-clip")          # a run dir (its latest checkpoint) or a .pt file
    trained.head           # the head, eval mode: trained.head.rollout(...), .global_video(...), ...
    trained.config         # the TrainConfig it was trained with;  trained.encoder_spec: the store's spec

A checkpoint holds: format, step, epoch, batch (next batch of that epoch), model (head state_dict),
optimizer, scheduler, rng (torch, cuda, numpy, python), config (dict), encoder_spec, dims, metrics.
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.config import build
from trainer.heads import build_head
from trainer.train_config import TrainConfig

FORMAT = "groundcache-trainer-checkpoint-v1"
CHECKPOINT_DIR = "checkpoints"
_STEP_FILE = re.compile(r"step-(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or from another format."""


def rng_state() -> dict[str, Any]:
    keys_name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    numpy_state = {"name": keys_name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "gauss": float(gauss)}
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state,
             "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:08d}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic: written to a temporary name, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def step_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's step checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.pt") if (m := _STEP_FILE.search(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    for old in step_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file, or the newest one of a run directory."""
    path = Path(path)
    if path.is_dir():
        found = step_checkpoints(path)
        if not found:
            raise CheckpointError(f"{path}: no checkpoints under {path / CHECKPOINT_DIR}")
        path = found[-1]
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    state["path"] = str(path)
    return state


@dataclass
class TrainedHead:
    head: nn.Module
    config: TrainConfig
    encoder_spec: dict
    step: int
    path: str


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedHead:
    """The trained head (eval mode, on `device`) with its config and the store spec it was trained on."""
    state = load_checkpoint(path, map_location=device)
    config = build(TrainConfig, state["config"])
    head = build_head(config.head, state["dims"])
    head.load_state_dict(state["model"])
    return TrainedHead(head.to(device).eval(), config, state["encoder_spec"], int(state["step"]), state["path"])
