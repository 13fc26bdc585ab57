"""The typed configs of `python -m eval.drivers.demo` and `python -m eval.drivers.compare`, on the mechanism of
every command (pipeline.config): the defaults here <- the flags given <- `key=value` overrides (`world.seed=3`,
`steps=100`); an unknown key is an error naming it."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import load_config


@dataclass(frozen=True)
class WorldConfig:
    """The generated world (python -m manifests.synth) and its stores."""
    seed: int = 0
    train_videos: int = 80
    test_videos: int = 10
    seconds: str = "30-40"          # video length range
    jobs: int = 2                   # videos rendered at once
    grid_dtype: Literal["float16", "int8"] = "float16"  # grid tokens on disk (pipeline.extract --grid-dtype)

    def __post_init__(self) -> None:
        if self.train_videos < 1 or self.test_videos < 1 or self.jobs < 1:
            raise ValueError("train_videos, test_videos and jobs must be >= 1")


@dataclass(frozen=True)
class DemoConfig:
    out: str = "data/demo"
    epochs: int | None = None       # training epochs (None: the demo preset's)
    ablations: bool = False         # also the global-only and local-only heads (the paper's Table 6)
    world: WorldConfig = field(default_factory=WorldConfig)


@dataclass(frozen=True)
class CompareConfig:
    out: str = "data/compare"
    steps: int = 600                # optimiser steps per method (the shared budget)
    methods: tuple[str, ...] = ()   # registered methods to train (empty: all)
    train_store: str | None = None  # stores of your own (all three, or none: the demo's world under `out`)
    test_store: str | None = None   # the benchmark videos' features (whole videos at 1 fps)
    benchmark_dir: str | None = None  # the benchmarks root (groundingyoutube/, miningyoutube/)
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        given = [self.train_store, self.test_store, self.benchmark_dir]
        if any(given) and not all(given):
            raise ValueError("train_store, test_store and benchmark_dir (--train-store, --test-store, "
                             "--benchmark-dir) go together")
        if self.steps < 1:
            raise ValueError("steps must be >= 1")


def add_world_flags(p: argparse.ArgumentParser) -> None:
    w = p.add_argument_group("the generated world (world.*)")
    w.add_argument("--seed", type=int, help="world seed (default 0)")
    w.add_argument("--train-videos", type=int, help="default 80")
    w.add_argument("--test-videos", type=int, help="default 10")
    w.add_argument("--seconds", help="video length range, seconds (default 30-40)")
    w.add_argument("--jobs", type=int, help="videos rendered at once (default 2)")
    w.add_argument("--grid-dtype", choices=("float16", "int8"), help="grid tokens on disk (default float16)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config fields, e.g. world.seed=3")


WORLD_FLAGS = ("seed", "train_videos", "test_videos", "seconds", "jobs", "grid_dtype")


def config_from_flags(cls: type, args: argparse.Namespace, top: tuple[str, ...]):
    """The config: the flags given (`top` fields and the world flags) as base values, then the overrides."""
    base = {k: getattr(args, k) for k in top if getattr(args, k) is not None}
    world = {k: getattr(args, k) for k in WORLD_FLAGS if getattr(args, k) is not None}
    return load_config(cls, None, args.overrides, None, base={**base, "world": world} if world else base)
