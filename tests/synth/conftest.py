"""Fixtures of the synthetic-world tests: one tiny world (3 videos of 15-17 s) generated once per session,
a second copy with the same seed and one with another seed (determinism)."""
from __future__ import annotations

from pathlib import Path

import pytest

from manifests.synth import GenerationReport, World, WorldConfig, generate, read_world

# Seed 12 gives every verb, an idle hand, and test steps of 3 s (too short for ground_seg_3to20.json) and of
# 4 s (kept) in 3 short videos; test_world and test_formats check that it still does.
TINY = WorldConfig(seed=12, train_videos=1, test_videos=2, seconds=(15, 17), step_seconds=(3, 4), min_gap=1,
                   idle_hands=0.5)


def _generate(root: Path, config: WorldConfig) -> tuple[GenerationReport, World]:
    report = generate(root, config, jobs=2, progress=False)
    return report, read_world(report.paths.world)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[GenerationReport, World]:
    return _generate(tmp_path_factory.mktemp("synth") / "world", TINY)


@pytest.fixture(scope="session")
def tiny_twin(tmp_path_factory) -> tuple[GenerationReport, World]:
    return _generate(tmp_path_factory.mktemp("synth-twin") / "world", TINY)


@pytest.fixture(scope="session")
def tiny_other_seed(tmp_path_factory) -> tuple[GenerationReport, World]:
    config = WorldConfig(**{**TINY.as_dict(), "seed": TINY.seed + 1})
    return _generate(tmp_path_factory.mktemp("synth-other") / "world", config)
