"""Heads by name. Each entry builds an nn.Module from the store's feature widths and a HeadConfig and has a
`tiny` variant (head.variant=tiny) with small widths for tests.

    head = build_head(cfg.head, dims={"global": 512, "grid": 512, "sentence": 512, "words": 512})

Registered: `stg` (global + local branches, Chen et al. 2024) and `comma` (the local branch alone, Tan et al.
2021: sentence-level loss, or the word-level loss of its eq. 6 with head.word_values=true). Every head has
`encode_video`, `encode_text`, `pairs`, `rollout`, `local_scores`, `selection_projections`; heads with
`has_global` add `video_embedding`, `global_video`, `global_text` (see trainer.heads.local / .stg).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from torch import nn

from trainer.config import ConfigError
from trainer.heads.local import LocalHead, PairOutput
from trainer.heads.stg import StgHead
from trainer.train_config import HeadConfig

DIM_KEYS = ("global", "grid", "sentence", "words")


@dataclass(frozen=True)
class HeadEntry:
    name: str
    build: Callable[[dict[str, int], HeadConfig], nn.Module]
    tiny: dict = field(default_factory=dict)  # HeadConfig fields the tiny variant sets
    summary: str = ""


HEADS: dict[str, HeadEntry] = {}


def register_head(entry: HeadEntry) -> None:
    if entry.name in HEADS:
        raise ValueError(f"head {entry.name!r} is already registered")
    HEADS[entry.name] = entry


def resolve_head_config(cfg: HeadConfig) -> HeadConfig:
    """The HeadConfig a head is built with: the tiny variant's sizes applied."""
    if cfg.name not in HEADS:
        raise ConfigError(f"unknown head {cfg.name!r}; registered heads: {sorted(HEADS)}")
    return replace(cfg, **HEADS[cfg.name].tiny) if cfg.variant == "tiny" else cfg


def build_head(cfg: HeadConfig, dims: dict[str, int]) -> nn.Module:
    resolved = resolve_head_config(cfg)
    missing = [k for k in DIM_KEYS if k not in dims]
    if missing:
        raise ValueError(f"feature widths {missing} missing from {dims}")
    return HEADS[cfg.name].build({k: int(dims[k]) for k in DIM_KEYS}, resolved)


register_head(HeadEntry("stg", StgHead, {"dim": 32}, "global + local (CA-SA-CA) branches"))
register_head(HeadEntry("comma", LocalHead, {"dim": 32}, "local branch only (CoMMA)"))

__all__ = ["HEADS", "HeadEntry", "LocalHead", "PairOutput", "StgHead", "build_head", "register_head",
           "resolve_head_config"]
