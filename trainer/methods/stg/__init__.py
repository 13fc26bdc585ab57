"""`stg` (Chen et al. CVPR 2024) and `comma` (Tan et al. NeurIPS 2021): they share the local stack (CA-SA-CA
over grid tokens and word tokens), the frame selection and the step; stg adds the global branch. See README.md."""
from __future__ import annotations

from pathlib import Path

from trainer.data import NarrationDataset
from trainer.methods.method import Method
from trainer.methods.stg.config import GroundingConfig
from trainer.methods.stg.head import StgHead
from trainer.methods.stg.inference import HeadGrounder
from trainer.methods.stg.local import LocalHead
from trainer.methods.stg.step import GroundingModel

GROUNDING_TASKS = ("gyt-spatial", "gyt", "youcook", "mining", "gyt-clips", "youcook-bb")
REPORTED = ("gyt-spatial", "gyt", "mining")  # the demo's test store holds no YouCook2 videos


def _dataset(root, index, cfg):
    return NarrationDataset(root, index, cfg.data)


_COMMON = dict(section=GroundingConfig, step=GroundingModel, dataset=_dataset, inference=HeadGrounder,
               tasks=GROUNDING_TASKS, presets=Path(__file__).resolve().parent / "presets", tiny={"dim": 32})
METHODS = (
    Method("stg", build_head=StgHead, demo_preset="demo", reported=REPORTED, tiny_preset="tiny",
           every_term=("stg.head.word_values=true", "stg.loss.word_weight=0.5"),
           summary="global + local (CA-SA-CA) branches", **_COMMON),
    Method("comma", build_head=LocalHead, demo_preset="comma-demo", paper_preset="comma-paper-demo", reported=REPORTED,
           tiny_preset="comma-tiny",
           every_term=("comma.head.word_values=true", "comma.loss.word_weight=0.5"),
           summary="the local branch alone (CoMMA)", **_COMMON),
)
