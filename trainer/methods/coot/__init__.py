"""`coot` (Ging et al. NeurIPS 2020): hierarchical video and text transformers for retrieval. See README.md."""
from __future__ import annotations

from pathlib import Path

from trainer.methods.method import Method
from trainer.methods.coot.config import CootConfig
from trainer.methods.coot.dataset import CootDataset
from trainer.methods.coot.head import CootHead
from trainer.methods.coot.inference import CootRetriever
from trainer.methods.coot.step import CootModel


def _dataset(root, index, cfg):
    return CootDataset(root, index, cfg.data, cfg.coot.data, cfg.seed)


# Its compare rows read the query texts' features stored at extraction (eval.infer text.source=store), as
# COOT's own loaders read precomputed text features.
EVAL_OVERRIDES = ("text.source=store",)
METHODS = (Method("coot", CootConfig, build_head=CootHead, step=CootModel, dataset=_dataset, inference=CootRetriever,
                  tasks=("retrieval",), presets=Path(__file__).resolve().parent / "presets", demo_preset="coot-tiny",
                  paper_preset="coot-paper-tiny",
                  reported=("retrieval",), eval_overrides=EVAL_OVERRIDES,
                  tiny_preset="coot-tiny", tiny={"dim": 32, "heads": 2}, every_term=("coot.loss.cycle_weight=1",),
                  rank_invariant=("coot.head.dropout=0", "coot.loss.cycle_samples=0", "coot.data.frames=centre"),
                  summary="hierarchical video/text transformers (COOT)"),)
