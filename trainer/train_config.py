"""The `train` command's config. Defaults follow the paper (Chen et al. CVPR 2024, CLIP backbone); where the
paper is silent they take the released code's value. `presets/reference.yaml` sets the released code's
choices (../shared/research/reference_code_model_notes.md §8). Every paper-vs-code difference is a field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trainer.config import ConfigError, above, at_least, finite
from trainer.method_config import CootHeadConfig, CootLossConfig, WsraHeadConfig, WsraLossConfig

PRESET_DIR = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class DataConfig:
    encoder: Literal["clip", "s3d"] = "clip"        # which store features train the head
    expect: dict = field(default_factory=dict)      # partial encoder spec the store must match (else refused)
    store_fps: float | None = None                  # read only segments extracted at this rate (None: all)
    window_s: float = 16.0                          # candidate window length (paper: 16 s)
    anchor: Literal["center", "start"] = "center"   # window centred on the narration, or from its start (code)
    fps: float | None = 5.0                         # candidate rate; None: every stored row (s3d windows)
    candidates: int = 80                            # U, padded + masked past the video edges
    sampling: Literal["per_video", "per_narration"] = "per_video"  # one random narration per video per epoch
    kinds: tuple[str, ...] = ()                     # caption kinds to train on (empty: all timed captions)
    batch_size: int = 64                            # global batch over all ranks
    workers: int = 4                                # DataLoader worker processes
    prefetch: int = 4                               # batches prefetched per worker
    caption_cache: int = 32                         # videos whose captions a worker keeps in memory
    sample_cache_mb: float = 0.0                    # assembled samples each process keeps for later epochs
                                                    # (MB; 0: off); small stores then train from memory
    clip: Literal["window", "caption"] = "window"   # coot clip frames: the candidate window, or the caption's span
    max_clips: int = 16                             # coot: narrations per video item (a run of them when more)
    video_frames: int = 80                          # coot/wsra: frames (coot: centres of equal intervals) or
                                                    # snippets (wsra: means of equal groups) of a whole video
    snippet_s: float = 1.0                          # wsra: snippet length, frames mean-pooled over it

    def __post_init__(self) -> None:
        at_least("data", 1, candidates=self.candidates, max_clips=self.max_clips, video_frames=self.video_frames,
                 prefetch=self.prefetch)
        at_least("data", 2, batch_size=self.batch_size)  # contrastive: a batch needs negatives
        at_least("data", 0, workers=self.workers, caption_cache=self.caption_cache,
                 sample_cache_mb=self.sample_cache_mb)
        above("data", 0, window_s=self.window_s, fps=self.fps, store_fps=self.store_fps, snippet_s=self.snippet_s)
        if self.encoder == "s3d" and self.fps is not None:
            raise ValueError("data.fps must be null for s3d: its candidates are the stored windows")


@dataclass(frozen=True)
class SelectionConfig:
    method: Literal["sinkhorn", "topk", "none"] = "sinkhorn"  # Table 5: Sinkhorn, top-T by similarity, none
    keep: int = 16                                  # T frames kept (paper 16, code 8)
    text: Literal["words", "sentence"] = "words"    # local T (word tokens) or global T (sentence vector)
    video: Literal["frames", "regions"] = "frames"  # global V (frame vectors) or local V (grid tokens)
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
    name: str = "stg"                               # registry name (trainer.heads.HEADS)
    variant: Literal["full", "tiny"] = "full"       # tiny: the registry's small sizes (tests)
    dim: int = 512                                  # joint space d
    heads: int = 1                                  # attention heads of each self-attention
    layers: tuple[str, ...] = ("cross", "self", "cross")  # local stack, first to last
    train_score: Literal["scaled_dot", "dot", "cosine"] = "scaled_dot"  # cross-attention logits in training
    eval_score: Literal["scaled_dot", "dot", "cosine"] = "scaled_dot"   # ... in eval mode (code: dot)
    train_residual: Literal["none", "all", "all_but_first"] = "all_but_first"  # cross layers with a residual
    eval_residual: Literal["none", "all", "all_but_first"] = "all_but_first"   # (code eval: none)
    global_frames: Literal["selected", "all"] = "selected"  # global video vector from the T selected or all U
    global_pool: Literal["mean", "max"] = "mean"    # pooling of frame vectors into the clip vector
    global_text: Literal["sentence", "max_words"] = "sentence"  # EOT/sentence vector or max over word tokens
    word_values: bool = False                       # value MLP of CoMMA's word-level loss (eq. 6)
    pair_chunk: int = 0                             # videos per checkpointed chunk of the pairwise stack (0: off)
    coot: CootHeadConfig = field(default_factory=CootHeadConfig)  # head.name=coot (trainer.method_config)
    wsra: WsraHeadConfig = field(default_factory=WsraHeadConfig)  # head.name=wsra

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
    form: Literal["symmetric", "milnce"] = "symmetric"  # eq. 1 (two softmaxes) or code MIL-NCE (one, positive twice)
    margin: float = 0.0                             # delta subtracted from positive scores (paper gives no value)
    temperature: float = 1.0                        # scores divided by it (papers and code: none)
    normalize: bool = False                         # L2-normalise embeddings before the dot product
    global_weight: float = 1.0                      # L_global (0 drops the term)
    local_weight: float = 1.0                       # L_local, sentence level
    word_weight: float = 0.0                        # CoMMA eq. 6 word-level loss (needs head.word_values)
    local_group: int = 0                            # local loss over groups of this many samples (0: batch; code 16)
    group_reduce: Literal["sum", "mean"] = "mean"   # combine group losses (code: sum of 4)
    coot: CootLossConfig = field(default_factory=CootLossConfig)  # loss terms of head.name=coot
    wsra: WsraLossConfig = field(default_factory=WsraLossConfig)  # loss terms of head.name=wsra

    def __post_init__(self) -> None:
        above("loss", 0, temperature=self.temperature)
        at_least("loss", 0, local_group=self.local_group, global_weight=self.global_weight,
                 local_weight=self.local_weight, word_weight=self.word_weight)
        finite("loss", margin=self.margin)


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "adamw", "radam"] = "adam"  # paper: Adam; code: AdamW (0.01); COOT: RAdam
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Literal["cosine", "constant"] = "cosine"  # after warmup, per step
    warmup_steps: int = 5000                        # linear warmup from 0 (code: 5000)
    clip_grad: float = 0.0                          # max global grad norm (0: off)
    epochs: int = 10
    max_steps: int = 0                              # stop after this many steps (0: epochs x steps per epoch)

    def __post_init__(self) -> None:
        above("optim", 0, eps=self.eps)
        # lr 0 is allowed: a run that keeps its initial weights (the untrained baseline of tests and tables)
        at_least("optim", 0, lr=self.lr, weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                 clip_grad=self.clip_grad, max_steps=self.max_steps, epochs=self.epochs)
        if self.epochs == 0 and self.max_steps == 0:
            raise ConfigError("optim.epochs must be >= 1 when optim.max_steps is 0 (the run would take no step)")
        if not all(0 <= b < 1 for b in self.betas):  # also false for NaN
            raise ConfigError(f"optim.betas must each lie in [0, 1), got {list(self.betas)}")


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings that do not change the numbers; the only ones `--resume` accepts as overrides."""
    device: str = "auto"                            # auto: cuda:LOCAL_RANK when available, else cpu
    workers: int | None = None                      # overrides data.workers
    log_every: int = 10                             # steps between metrics lines
    checkpoint_every: int = 0                       # steps between checkpoints (0: each epoch end)
    keep_checkpoints: int = 2                       # newest step checkpoints kept (0: all)
    progress: bool = True                           # tqdm bar

    def __post_init__(self) -> None:
        at_least("runtime", 0, workers=self.workers, checkpoint_every=self.checkpoint_every,
                 keep_checkpoints=self.keep_checkpoints)
        at_least("runtime", 1, log_every=self.log_every)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1
    precision: Literal["auto", "float32", "bf16"] = "auto"  # auto: bf16 autocast on GPU, float32 on CPU
    data: DataConfig = field(default_factory=DataConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2 ** 32:  # numpy's seed range
            raise ConfigError(f"seed must lie in [0, 2**32), got {self.seed}")
        if self.loss.word_weight > 0 and not self.head.word_values:
            raise ValueError("loss.word_weight > 0 needs head.word_values=true (the value MLP of eq. 6)")
        if self.selection.keep > self.data.candidates:
            raise ValueError(f"selection.keep={self.selection.keep} > data.candidates={self.data.candidates}")
        if self.loss.local_group and self.data.batch_size % self.loss.local_group:
            raise ValueError(f"data.batch_size={self.data.batch_size} is not a multiple of "
                             f"loss.local_group={self.loss.local_group}")
