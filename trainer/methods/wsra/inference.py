"""What evaluation asks of `wsra` (the moments task, and per-second label scores for gyt and mining): a video
cut into snippets of wsra.data.snippet_s seconds (frames mean-pooled; no cap on their number, unlike training),
and for each query phi(v_s, t) over the snippets with its referring attention alpha = softmax(phi / T) (eq. 2).
`queries` needs `sentence`, `words`, `mask`.
"""
from __future__ import annotations

import numpy as np
import torch

from trainer.methods.wsra.dataset import snippets


class WsraScorer:
    kind = "snippets"

    def __init__(self, trained, device: torch.device, attention: str = "checkpoint", source: str = "auto", **_):
        if attention != "checkpoint" or source != "auto":  # settings of heatmaps and of similarities it has not
            raise ValueError("wsra has no attention rollout and no global/local similarity: leave "
                             "spatial.attention and temporal.source at their defaults")
        self.head, self.device = trained.head.to(device).eval(), device
        self.snippet_s = trained.config.wsra.data.snippet_s
        self.method = f"wsra@step{trained.step}"
        self.info: dict = {}

    def snippets(self, times: np.ndarray, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start s [n], end s [n], mean feature [n, Dg]) of the video's snippets."""
        return snippets(times, feats, self.snippet_s)

    @torch.no_grad()
    def scores(self, feats: np.ndarray, queries) -> tuple[np.ndarray, np.ndarray]:
        """(phi [Q, n], alpha [Q, n]) of every query over the video's snippets [n, Dg]."""
        head, device = self.head, self.device
        v = head.snippets(torch.from_numpy(np.asarray(feats, np.float32)).to(device))[None]        # [1, n, d]
        t = head.query(torch.from_numpy(queries.sentence.astype(np.float32)).to(device),
                       torch.from_numpy(queries.words.astype(np.float32)).to(device),
                       torch.from_numpy(queries.mask).to(device))                                 # [Q, d]
        phi = head.snippet_scores(v, t)                                                            # [Q, n]
        alpha = head.attention_from(phi, torch.ones_like(phi, dtype=torch.bool))
        return phi.float().cpu().numpy(), alpha.float().cpu().numpy()
