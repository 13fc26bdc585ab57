"""Checkpoints: plain containers of tensors (loadable with `torch.load(weights_only=True)`), and loading a
trained head back for evaluation.

    from trainer.checkpoint import load_trained
    trained = load_trained("runs/paper-clip")          # a run dir (its latest checkpoint) or a .pt file
    trained.head           # the head, eval mode: trained.head.rollout(...), .global_video(...), ...
    trained.config         # the TrainConfig it was trained with;  trained.encoder_spec: the store's spec

A checkpoint holds: format, step, epoch, batch (next batch of that epoch), model (head state_dict),
optimizer, scheduler, rng (torch, cuda, numpy, python), config (dict), encoder_spec, dims, world_size.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.config import ConfigError, to_dict
from trainer.methods import build_head, config_from_dict, load_train_yaml
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


def _read(path: Path, map_location) -> dict[str, Any]:
    """One checkpoint file; CheckpointError naming it when it is unreadable (truncated, corrupt) or foreign."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        raise CheckpointError(f"{path}: unreadable checkpoint, truncated or corrupt ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    lacking = [k for k in ("step", "model", "config", "dims", "encoder_spec") if k not in state]
    if lacking:
        raise CheckpointError(f"{path}: an incomplete checkpoint (no {', '.join(lacking)})")
    state["path"] = str(path)
    return state


def _newest_readable(run_dir: Path, map_location) -> dict[str, Any]:
    """The newest checkpoint of a run that can be read; a newer unreadable one is passed over with a warning
    line on stderr (the run goes on from the previous checkpoint)."""
    found = step_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: no checkpoints under {run_dir / CHECKPOINT_DIR}")
    problems = []
    for path in reversed(found):
        try:
            state = _read(path, map_location)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        for problem in problems:
            print(f"warning: {problem}; falling back to {path.name}", file=sys.stderr)
        state["skipped"] = problems
        return state
    raise CheckpointError(f"{run_dir}: no readable checkpoint ({len(found)} tried; newest: {problems[0]})")


def _flat(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in cfg.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and k != "expect" else {f"{prefix}{k}": v})
    return out


def check_run_config(run_dir: Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint whose config differs from the run's config.yaml (runtime settings aside): another
    run's or another head's checkpoint copied into this run directory."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    ours = _flat(to_dict(load_train_yaml(path)))
    try:
        theirs = _flat(to_dict(config_from_dict(state["config"])))
    except ConfigError as exc:
        raise CheckpointError(f"{state['path']}: its config does not load ({exc})") from None
    differ = [k for k in ours if not k.startswith("runtime.") and theirs.get(k) != ours[k]]
    if differ:
        k = "method" if "method" in differ else differ[0]
        raise CheckpointError(f"{state['path']}: not a checkpoint of this run: its {k} is {theirs.get(k)!r} but "
                              f"{path} has {ours[k]!r} ({len(differ)} setting(s) differ); move the file out of "
                              f"{run_dir / CHECKPOINT_DIR}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file, or the newest readable one of a run directory (which must be of that run)."""
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint")
        return _read(path, map_location)
    state = _newest_readable(path, map_location)
    check_run_config(path, state)
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
    try:
        config = config_from_dict(state["config"])
        head = build_head(config, state["dims"])
        head.load_state_dict(state["model"])
    except (ConfigError, KeyError, RuntimeError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{state['path']}: its head cannot be rebuilt ({reason})") from None
    return TrainedHead(head.to(device).eval(), config, state["encoder_spec"], int(state["step"]), state["path"])
