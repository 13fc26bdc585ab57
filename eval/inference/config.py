"""The inference config (`python -m eval.infer`, `python -m eval.run`, `python -m eval.baselines global-sim`).

One frozen dataclass tree read with pipeline.config's mechanism: defaults <- a preset of `presets/` (`paper`,
`reference`; chosen by --protocol unless --preset is given) <- `key=value` overrides, unknown keys are errors.
Every threshold and choice of the inference is a field here; eval/README.md explains each.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.config import above, finite, load_config

PRESET_DIR = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class TextConfig:
    template: str = "{}"            # query text = template.format(label), e.g. "a video of {}"
    underscores: bool = True        # "beat_egg" -> "beat egg" before encoding (the published loaders' replace)
    source: Literal["encoder", "store"] = "encoder"  # encoder: the store's text encoder rebuilt and run on the
                                    # query texts; store: the features extraction stored for a caption of the
                                    # video with exactly that text (no weights needed at evaluation)

    def __post_init__(self) -> None:
        if "{}" not in self.template:
            raise ValueError(f"text.template must contain '{{}}', got {self.template!r}")


@dataclass(frozen=True)
class SpatialConfig:
    chunk: int = 16                 # store rows (1-fps frames, or S3D windows) per rollout chunk (code: 16)
    attention: Literal["checkpoint", "paper", "reference"] = "checkpoint"  # eval-mode attention: the head's
                                    # head.eval_score/eval_residual, or paper (cosine, all_but_first) /
                                    # reference (dot, none: the released eval branch)
    padding: Literal["mask", "black"] = "mask"  # last chunk: masked padding rows (paper), or the features of
                                    # black frames as real inputs, seconds start..end-1 chunked as the published
                                    # loaders do, and the black frame's map written as `padding` (reference)
    batch_chunks: int = 32          # chunks per forward pass (memory bound)

    def __post_init__(self) -> None:
        if self.chunk < 1 or self.batch_chunks < 1:
            raise ValueError("spatial.chunk and spatial.batch_chunks must be >= 1")


@dataclass(frozen=True)
class TemporalConfig:
    source: Literal["auto", "global", "local"] = "auto"  # per-second similarity of the global embeddings
                                    # (stg), or CoMMA's local score <mean regions, mean words> per frame;
                                    # auto: global when the head has a global branch, else local
    mapping: Literal["raw", "affine", "minmax", "softmax"] = "minmax"  # similarity -> score, see README
    threshold: float = 0.5          # background score: a second whose best label scores below it is background
    temperature: float = 0.1        # softmax mapping: softmax(similarity / temperature) over the pool
    smooth: int = 1                 # moving average of the scores over this many seconds (odd; 1 = per frame)
    mining_temperature: float = 0.1  # mining: written scores are log_softmax(score / this) over the labels

    def __post_init__(self) -> None:
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"temporal.smooth must be an odd number >= 1, got {self.smooth}")
        above("temporal", 0, temperature=self.temperature, mining_temperature=self.mining_temperature)
        finite("temporal", threshold=self.threshold)


@dataclass(frozen=True)
class MomentsConfig:
    """Moment proposals from snippet attention (WSRA Sec. 4.2 on Charades-STA): sliding windows."""
    lengths: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)  # window lengths (the paper: 20-50 % of the video)
    relative: bool = True           # lengths are fractions of the video (else seconds)
    overlap: float = 0.8            # of consecutive windows of one length (the paper: 80 %)
    score: Literal["mean", "sum"] = "mean"  # a window's score: mean or sum of the attention over its snippets
    top: int = 5                    # proposals written per query (R@5 needs 5)
    nms: float = 1.0                # greedy suppression IoU (1.0: off; the paper describes none)

    def __post_init__(self) -> None:
        if not self.lengths or min(self.lengths) <= 0 or not 0 <= self.overlap < 1 or self.top < 1:
            raise ValueError("need lengths > 0, 0 <= overlap < 1 and top >= 1")


@dataclass(frozen=True)
class InferConfig:
    fps: float = 1.0                # read store segments extracted at this rate (evaluation sets: 1 fps)
    device: str = "auto"            # auto: cuda when available, else cpu
    progress: bool = True           # tqdm bar over videos
    text: TextConfig = field(default_factory=TextConfig)
    spatial: SpatialConfig = field(default_factory=SpatialConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    moments: MomentsConfig = field(default_factory=MomentsConfig)
    batch_videos: int = 16          # retrieval: videos per forward pass

    def __post_init__(self) -> None:
        above("", 0, fps=self.fps)
        if self.batch_videos < 1:
            raise ValueError("batch_videos must be >= 1")


def load_infer_config(protocol: str = "paper", preset: str | None = None,
                      overrides: tuple[str, ...] | list[str] = ()) -> InferConfig:
    """The preset named after the protocol (or `preset`: a name in presets/ or a .yaml path), then overrides."""
    return load_config(InferConfig, preset or protocol, list(overrides), PRESET_DIR)


def query_text(label: str, cfg: TextConfig) -> str:
    """The text encoded for a label or query as written in the annotation files."""
    return cfg.template.format(label.replace("_", " ") if cfg.underscores else label)
