"""`wsra` (weak supervision and referring attention): snippet scores phi(v, t) and referring attention for
temporal grounding and moment retrieval. See README.md."""
from __future__ import annotations

from pathlib import Path

from trainer.methods.method import Method
from trainer.methods.wsra.config import WsraConfig
from trainer.methods.wsra.dataset import WsraDataset
from trainer.methods.wsra.head import WsraHead
from trainer.methods.wsra.inference import WsraScorer
from trainer.methods.wsra.step import WsraModel


def _dataset(root, index, cfg):
    return WsraDataset(root, index, cfg.data, cfg.wsra.data)


# Its compare rows read the query texts' features stored at extraction (eval.infer text.source=store).
EVAL_OVERRIDES = ("text.source=store",)
METHODS = (Method("wsra", WsraConfig, build_head=WsraHead, step=WsraModel, dataset=_dataset, inference=WsraScorer,
                  tasks=("moments", "gyt", "mining"), presets=Path(__file__).resolve().parent / "presets",
                  demo_preset="wsra-tiny", paper_preset="wsra-paper-tiny", reported=("moments", "gyt"),
                  eval_overrides=EVAL_OVERRIDES,
                  tiny_preset="wsra-tiny", tiny={"dim": 32},
                  every_term=("wsra.loss.top_k=1", "wsra.loss.last_k=0", "wsra.loss.crov_threshold=-1"),
                  rank_invariant=("data.batch_size=6",), summary="referring attention over snippets (WSRA)"),)
