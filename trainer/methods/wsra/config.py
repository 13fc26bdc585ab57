"""The config section of the `wsra` method (`wsra.*` keys): the head, the loss terms and the snippets a query
sees. Defaults are the paper's values (WSRA Sec. 3-4); where the paper is silent the comment says what was chosen.
A weight of 0 drops a term.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import above, at_least


@dataclass(frozen=True)
class WsraHeadConfig:
    variant: Literal["full", "tiny"] = "full"       # tiny: d 32 (tests)
    dim: int = 512                                  # joint width d (the paper gives none)
    global_text: Literal["sentence", "max_words"] = "sentence"  # the query: sentence vector or max over words
    score_layers: int = 1                           # hidden layers of phi's FC; 0 = one linear layer on concat(v, t)
                                                    # (the paper's literal phi, whose frame ranking is query-blind)
    attention_temperature: float = 1.0              # alpha = softmax(phi / T) (eq. 2: T = 1)

    def __post_init__(self) -> None:
        at_least("head", 1, dim=self.dim)
        if self.score_layers < 0 or self.attention_temperature <= 0:
            raise ValueError("head: need score_layers >= 0 and attention_temperature > 0")


@dataclass(frozen=True)
class WsraLossConfig:
    background_weight: float = 0.1                  # alpha of eq. 11, L_bg (eq. 3) (DiDeMo: 0.1)
    crov_weight: float = 0.1                        # beta, cross-video similarity L_crov (eq. 9)
    vas_weight: float = 0.1                         # gamma, video-level VAS (eq. 5)
    instance_weight: float = 1.0                    # delta, instance-level VAS (eq. 6) (DiDeMo: 1)
    background_margin: float = 0.2                  # m of eq. 3 (paper silent)
    background_gamma: float = 10.0                  # gamma of eq. 3 (paper silent)
    vas_margin: float = 0.2                         # m of eq. 5 (paper silent)
    instance_margin: float = 0.2                    # m of eq. 6 (paper silent on its value)
    instance_margin_split: bool = True              # True: each snippet's hinge uses m / T_valid (the alpha-weighted
                                                    # scores are ~1/T, so the margin scales with them); False: m in
                                                    # every snippet's hinge, as eq. 6 writes it (preset wsra-paper)
    crov_margin: float = 0.2                        # m of eq. 9 (paper silent)
    crov_threshold: float = 0.9                     # tau of eq. 10, query cosine gating the pseudo-positive video
    top_k: int = 3                                  # most similar queries excluded as pseudo-positives (Fig. 5: 3)
    last_k: int = 2                                 # least similar queries excluded as easy negatives (Fig. 5: 2)
    rank_by: Literal["text", "matching"] = "text"   # sort queries by cosine of the query features, or by the
                                                    # matching score phi(v_f^i, t^j) of video i's foreground
    instance_weights: Literal["frames", "queries"] = "frames"  # eq. 6 weights: alpha over frames (eq. 2), or
                                                    # beta over the batch's queries (eq. 4)

    def __post_init__(self) -> None:
        weights = (self.background_weight, self.crov_weight, self.vas_weight, self.instance_weight)
        if min(weights) < 0 or self.top_k < 0 or self.last_k < 0:
            raise ValueError("loss: weights, top_k and last_k must be >= 0")


@dataclass(frozen=True)
class WsraDataConfig:
    video_frames: int = 80                          # most snippets per video (means of equal groups when more)
    snippet_s: float = 1.0                          # snippet length: frames mean-pooled over it

    def __post_init__(self) -> None:
        at_least("data", 1, video_frames=self.video_frames)
        above("data", 0, snippet_s=self.snippet_s)


@dataclass(frozen=True)
class WsraConfig:
    """`wsra.head`, `wsra.loss`, `wsra.data`."""

    head: WsraHeadConfig = field(default_factory=WsraHeadConfig)
    loss: WsraLossConfig = field(default_factory=WsraLossConfig)
    data: WsraDataConfig = field(default_factory=WsraDataConfig)
