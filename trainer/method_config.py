"""Config sections of the COOT and WSRA heads: `head.coot`, `head.wsra` (architecture) and `loss.coot`,
`loss.wsra` (loss terms). Defaults are the papers' values (COOT: Ging et al. NeurIPS 2020, appendix Table 7,
YouCook2 with HowTo100M features; WSRA: its Sec. 3-4); where a paper is silent the comment says what was chosen.
Every paper choice, ablation and loss switch is a field; a weight of 0 drops a loss term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CootHeadConfig:
    layers: int = 1                                 # T-Transformer self-attention layers (paper: 1)
    context_layers: int = 1                         # F_Local layers of the contextual transformer (paper: 1)
    ff_mult: int = 1                                # feed-forward width = ff_mult x head.dim (Table 7: 1x)
    af_heads: int = 2                               # Attention-FA heads (Table 7: 2)
    af_mult: int = 2                                # Attention-FA hidden width = af_mult x head.dim (2x)
    pool: Literal["af", "avg", "max"] = "af"        # low-level pooling: Attention-FA or the Table 10 ablations
    context: bool = True                            # CoT's F_Global cross-attention (Table 1 "CoT" ablation)
    dropout: float = 0.05                           # Table 7, YouCook2 + HowTo100M features
    init_std: float = 0.01                          # truncated normal (+-2 std) of linear layers; 0: torch default

    def __post_init__(self) -> None:
        if min(self.layers, self.context_layers, self.ff_mult, self.af_heads, self.af_mult) < 1:
            raise ValueError("head.coot: layers, context_layers, ff_mult, af_heads and af_mult must be >= 1")
        if not 0 <= self.dropout < 1 or self.init_std < 0:
            raise ValueError("head.coot: need 0 <= dropout < 1 and init_std >= 0")


@dataclass(frozen=True)
class CootLossConfig:
    clip_weight: float = 1.0                        # l^L_align, clip-sentence (eq. 2)
    video_weight: float = 1.0                       # l^H_align, video-paragraph
    global_weight: float = 1.0                      # l^g_align, global contexts g_v, g_p
    cluster_clip_weight: float = 1.0                # l_cluster over clips and over sentences (eq. 3)
    cluster_video_weight: float = 1.0               # l_cluster over videos and over paragraphs
    cycle_weight: float = 0.001                     # lambda of l_CMC (paper: 0.001 YouCook2, 0.01 ActivityNet)
    clip_margin: float = 0.2                        # beta          (paper: every margin 0.2)
    video_margin: float = 0.2                       # alpha
    global_margin: float = 0.2                      # alpha_g
    cluster_clip_margin: float = 0.2                # gamma
    cluster_video_margin: float = 0.2               # eta
    cycle_distance: Literal["sum", "mean"] = "sum"  # squared distance of eq. 6-7 (sum, paper) or per-dim mean (code)
    cycle_samples: int = 1                          # start points per sequence (paper: 1 clip, 1 sentence); 0: all
    cycle_normalize: bool = False                   # cycle on L2-normalised embeddings (code: raw)

    def __post_init__(self) -> None:
        weights = (self.clip_weight, self.video_weight, self.global_weight, self.cluster_clip_weight,
                   self.cluster_video_weight, self.cycle_weight)
        if min(weights) < 0 or self.cycle_samples < 0:
            raise ValueError("loss.coot: weights and cycle_samples must be >= 0")


@dataclass(frozen=True)
class WsraHeadConfig:
    score_layers: int = 1                           # hidden layers of phi's FC; 0 = one linear layer on concat(v, t)
                                                    # (the paper's literal phi, whose frame ranking is query-blind)
    attention_temperature: float = 1.0              # alpha = softmax(phi / T) (eq. 2: T = 1)

    def __post_init__(self) -> None:
        if self.score_layers < 0 or self.attention_temperature <= 0:
            raise ValueError("head.wsra: need score_layers >= 0 and attention_temperature > 0")


@dataclass(frozen=True)
class WsraLossConfig:
    background_weight: float = 0.1                  # alpha of eq. 11, L_bg (eq. 3) (DiDeMo: 0.1)
    crov_weight: float = 0.1                        # beta, cross-video similarity L_crov (eq. 9)
    vas_weight: float = 0.1                         # gamma, video-level VAS (eq. 5)
    instance_weight: float = 1.0                    # delta, instance-level VAS (eq. 6) (DiDeMo: 1)
    background_margin: float = 0.2                  # m of eq. 3 (paper silent)
    background_gamma: float = 10.0                  # gamma of eq. 3 (paper silent)
    vas_margin: float = 0.2                         # m of eq. 5 (paper silent)
    instance_margin: float = 0.2                    # m of eq. 6, per snippet m / T_valid (paper silent: the alpha-
                                                    # weighted scores are ~1/T, so the margin scales with them)
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
            raise ValueError("loss.wsra: weights, top_k and last_k must be >= 0")
