"""The config section of the `stg` and `comma` methods (`stg.*` / `comma.*` keys): the head, frame selection and
the losses. Defaults follow the paper (Chen et al. CVPR 2024, CLIP backbone); where the paper is silent they
take the released code's value. `presets/reference.yaml` sets the released code's choices
(../shared/research/reference_code_model_notes.md §8). Every paper-vs-code difference is a field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import ConfigError, above, at_least, finite


@dataclass(frozen=True)
class SelectionConfig:
    # Table 5: Sinkhorn, top-T by similarity, none; random: T valid frames at random (appendix 9.1's baseline)
    method: Literal["sinkhorn", "topk", "none", "random"] = "sinkhorn"
    keep: int = 16                                  # T frames kept (paper 16, code 8)
    text: Literal["words", "sentence"] = "words"    # local T (word tokens) or global T (sentence vector)
    # global V (frame vectors), local V (grid tokens) or both (the mean of the two similarities: Table 5's
    # "Average over last two", whose numbers are the full model's in Tables 6 and 13)
    video: Literal["frames", "regions", "both"] = "frames"
    # method none: every candidate inside the narration's span (Sec. 5.5: "None uses all frames within the ASR
    # boundary (U = T)"), or the `keep` candidates centred on it (a fixed T, our earlier reading)
    none_frames: Literal["span", "centred"] = "span"
    # local V: a frame's similarity to a text token is the sum over its grid tokens (Sec. 5.5: "we sum over the
    # scores with respect to each frame"), or their mean
    region_reduce: Literal["sum", "mean"] = "sum"
    # global T: the plan's columns are the sentences of the whole batch, a frame ranked by its own sentence's
    # column (our choice: with its own sentence alone the plan is constant and Sinkhorn equals top-k, which
    # Table 5 contradicts; the released code names SwAV's batch-wise `distributed_sinkhorn`), or `own` alone
    sentence_columns: Literal["batch", "own"] = "batch"
    space: Literal["projected", "raw"] = "projected"  # via the global projections (paper) or frozen features (code)
    normalize: bool = True                          # cosine similarity (code) instead of dot product
    epsilon: float = 0.05                           # entropic smoothing of Q = diag(a) exp(P/eps) diag(b)
    iterations: int = 50                            # Sinkhorn-Knopp row/column scalings
    mask_padding: bool = True                       # padding words get no mass (code: all 20 positions used)
    score: Literal["similarity", "peak", "per_word"] = "similarity"  # how a frame's plan row ranks it

    def __post_init__(self) -> None:
        at_least("selection", 1, keep=self.keep, iterations=self.iterations)
        above("selection", 0, epsilon=self.epsilon)


@dataclass(frozen=True)
class HeadConfig:
    variant: Literal["full", "tiny"] = "full"       # tiny: the method's small sizes (tests)
    dim: int = 512                                  # joint space d
    heads: int = 1                                  # attention heads of each self-attention
    layers: tuple[str, ...] = ("cross", "self", "cross")  # local stack, first to last
    # cross-attention logits in training and in eval mode: the paper presets set cosine (CVPR Sec. 3.3); this
    # default is the released code's training attention (its eval mode: dot), which comma keeps
    train_score: Literal["scaled_dot", "dot", "cosine"] = "scaled_dot"
    eval_score: Literal["scaled_dot", "dot", "cosine"] = "scaled_dot"
    train_residual: Literal["none", "all", "all_but_first"] = "all_but_first"  # cross layers with a residual
    eval_residual: Literal["none", "all", "all_but_first"] = "all_but_first"   # (code eval: none)
    global_frames: Literal["selected", "all"] = "selected"  # global video vector from the T selected or all U
    global_pool: Literal["mean", "max"] = "mean"    # pooling of frame vectors into the clip vector
    global_text: Literal["sentence", "max_words"] = "sentence"  # EOT/sentence vector or max over word tokens
    # a frame's global vector: the encoder's own ([CLS] for CLIP, the pooled window for S3D) or the mean of its
    # grid tokens (Table 13 compares both; the paper's default is [CLS])
    global_feature: Literal["cls", "grid_mean"] = "cls"
    word_values: bool = False                       # value MLP of CoMMA's word-level loss (eq. 6)
    # CoMMA eq. 2: learned W_K, W_Q, W_V in each cross layer (comma-paper); off: none (both released codes)
    cross_projections: bool = False
    pair_chunk: int = 0                             # videos per checkpointed chunk of the pairwise stack (0: off)

    def __post_init__(self) -> None:
        bad = [x for x in self.layers if x not in ("cross", "self")]
        if bad or not self.layers:
            raise ValueError(f"layers must be a non-empty list of 'cross'/'self', got {list(self.layers)}")
        at_least("head", 1, dim=self.dim, heads=self.heads)
        at_least("head", 0, pair_chunk=self.pair_chunk)
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")


@dataclass(frozen=True)
class LossConfig:
    # eq. 1 (two softmaxes), the code's MIL-NCE (one softmax, positive twice, mean over the batch) or CoMMA eq. 5
    # (one softmax over the positive, the row and the column negatives; summed over the batch)
    form: Literal["symmetric", "milnce", "comma_eq5"] = "symmetric"
    margin: float = 0.0                             # delta subtracted from positive scores (paper gives no value)
    temperature: float = 1.0                        # scores divided by it (papers and code: none)
    normalize: bool = False                         # L2-normalise embeddings before the dot product
    global_weight: float = 1.0                      # L_global (0 drops the term)
    local_weight: float = 1.0                       # L_local, sentence level
    word_weight: float = 0.0                        # CoMMA eq. 6 word-level loss (needs head.word_values)
    local_group: int = 0                            # local loss over groups of this many samples (0: batch; code 16)
    group_reduce: Literal["sum", "mean"] = "mean"   # combine group losses (code: sum of 4)

    def __post_init__(self) -> None:
        above("loss", 0, temperature=self.temperature)
        at_least("loss", 0, local_group=self.local_group, global_weight=self.global_weight,
                 local_weight=self.local_weight, word_weight=self.word_weight)
        finite("loss", margin=self.margin)


@dataclass(frozen=True)
class GroundingConfig:
    """The section of a grounding method: `stg.head`, `stg.selection`, `stg.loss` (or `comma.*`)."""

    head: HeadConfig = field(default_factory=HeadConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.loss.word_weight > 0 and not self.head.word_values:
            raise ValueError("loss.word_weight > 0 needs head.word_values=true (the value MLP of eq. 6)")

    def check(self, cfg) -> None:
        """Checks against the common sections (the TrainConfig holding this section)."""
        if self.selection.keep > cfg.data.candidates:
            raise ConfigError(f"{cfg.method}.selection.keep={self.selection.keep} > "
                              f"data.candidates={cfg.data.candidates}")
        if self.loss.local_group and cfg.data.batch_size % self.loss.local_group:
            raise ConfigError(f"data.batch_size={cfg.data.batch_size} is not a multiple of "
                              f"{cfg.method}.loss.local_group={self.loss.local_group}")
