"""Heads by name. Each entry builds an nn.Module from the store's feature widths and a HeadConfig and has a
`tiny` variant (head.variant=tiny) with small widths for tests.

    head = build_head(cfg.head, dims={"global": 512, "grid": 512, "sentence": 512, "words": 512})

Registered: `stg` (global + local branches, Chen et al. 2024), `comma` (the local branch alone, Tan et al.
2021: sentence-level loss, or the word-level loss of its eq. 6 with head.word_values=true), `coot` (Ging et
al. 2020: hierarchical video/text transformers, trainer.heads.coot) and `wsra` (referring attention over
snippets, trainer.heads.wsra). `stg` and `comma` have `encode_video`, `encode_text`, `pairs`, `rollout`,
`local_scores`, `selection_projections`; heads with `has_global` add `video_embedding`, `global_video`,
`global_text` (see trainer.heads.local / .stg).

An entry may name the training step (`model`: head, TrainConfig, World -> nn.Module returning loss terms) and
the dataset (`dataset`: store root, NarrationIndex, DataConfig -> Dataset) it trains with; without them the
trainer uses trainer.model.GroundingModel and trainer.data.NarrationDataset.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from torch import nn

from trainer.config import ConfigError
from trainer.heads.coot import CootHead
from trainer.heads.local import LocalHead, PairOutput
from trainer.heads.stg import StgHead
from trainer.heads.wsra import WsraHead
from trainer.train_config import HeadConfig

DIM_KEYS = ("global", "grid", "sentence", "words")


@dataclass(frozen=True)
class HeadEntry:
    name: str
    build: Callable[[dict[str, int], HeadConfig], nn.Module]
    tiny: dict = field(default_factory=dict)  # HeadConfig fields the tiny variant sets
    summary: str = ""
    model: Callable | None = None             # training step module (None: trainer.model.GroundingModel)
    dataset: Callable | None = None           # training dataset (None: trainer.data.NarrationDataset)


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


def _coot_model(head: nn.Module, cfg, world) -> nn.Module:
    from trainer.coot_model import CootModel  # imported late: the step modules import the heads

    return CootModel(head, cfg, world)


def _wsra_model(head: nn.Module, cfg, world) -> nn.Module:
    from trainer.wsra_model import WsraModel

    return WsraModel(head, cfg, world)


def _coot_data(root, index, cfg):
    from trainer.video_data import CootDataset

    return CootDataset(root, index, cfg)


def _wsra_data(root, index, cfg):
    from trainer.video_data import WsraDataset

    return WsraDataset(root, index, cfg)


register_head(HeadEntry("stg", StgHead, {"dim": 32}, "global + local (CA-SA-CA) branches"))
register_head(HeadEntry("comma", LocalHead, {"dim": 32}, "local branch only (CoMMA)"))
register_head(HeadEntry("coot", CootHead, {"dim": 32, "heads": 2}, "hierarchical transformers (COOT)",
                        _coot_model, _coot_data))
register_head(HeadEntry("wsra", WsraHead, {"dim": 32}, "referring attention over snippets (WSRA)",
                        _wsra_model, _wsra_data))

__all__ = ["HEADS", "CootHead", "HeadEntry", "LocalHead", "PairOutput", "StgHead", "WsraHead", "build_head",
           "register_head", "resolve_head_config"]
