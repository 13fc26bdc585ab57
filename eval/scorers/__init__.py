"""One scorer per benchmark task (predictions file + annotation files -> metrics dict), plus what they share.

`SCORERS[task]` (a key per name of eval.tasks.TASKS) holds the scorer's frozen config dataclass and its
`score(config, predictions) -> metrics` function; eval.score builds the config with pipeline.config.load_config.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eval.predictions import Predictions
from eval.scorers import gyt, gyt_clips, gyt_spatial, mining, moments, retrieval, youcook, youcook_bb
from eval.tasks import TASKS


@dataclass(frozen=True)
class Scorer:
    config: type                                   # frozen dataclass of the scorer's settings
    score: Callable[[Any, Predictions], dict]      # (config, predictions) -> metrics
    required: tuple[str, ...] = ()                 # config keys a command line must set (no guessing them)


SCORERS: dict[str, Scorer] = {
    "gyt": Scorer(gyt.GytConfig, gyt.score, ("benchmark_dir",)),
    "gyt-spatial": Scorer(gyt_spatial.GytSpatialConfig, gyt_spatial.score, ("benchmark_dir",)),
    "youcook": Scorer(youcook.YouCookConfig, youcook.score, ("benchmark_dir",)),
    "mining": Scorer(mining.MiningConfig, mining.score, ("benchmark_dir",)),
    "retrieval": Scorer(retrieval.RetrievalConfig, retrieval.score),
    "moments": Scorer(moments.MomentsConfig, moments.score, ("benchmark", "benchmark_dir")),
    "gyt-clips": Scorer(gyt_clips.GytClipsConfig, gyt_clips.score, ("benchmark_dir",)),
    "youcook-bb": Scorer(youcook_bb.YouCookBBConfig, youcook_bb.score, ("benchmark_dir",)),
}
assert tuple(SCORERS) == TASKS, (tuple(SCORERS), TASKS)
