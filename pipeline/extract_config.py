"""The extract command's config (`python -m pipeline.extract`): one frozen dataclass read with pipeline.config's
mechanism. Values come from the defaults here <- the command-line flags (`--chunk-frames 64`) <- `key=value`
overrides (`chunk_frames=64`); unknown keys are errors. `__post_init__` refuses out-of-range values before any
work starts, with messages that name the flag (`--chunk-frames must be in [1, 4096], got 0`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

from pipeline.backends import BACKENDS
from pipeline.config import ConfigError, load_config
from pipeline.decode import RESIZE_MODES
from pipeline.plan import ON_CHANGE
from pipeline.store import layout

GRID_DTYPES = layout.GRID_DTYPES  # a module-level name, so that the Literal annotation below resolves
PRESETS = ("tiny", "vit-b-32")  # pipeline.encoders.PRESETS (not imported here: that module imports torch)
CLIP_NORMALIZE = ("clip", "none")

# (option, low, high): a chunk of 4096 frames is ~600 MB of decoded 224x224 RGB; more retries than 10 only
# repeat a deterministic failure; an S3D window is a multiple of 8 frames (mixed_5c has T/8 steps).
BOUNDS = (("chunk_frames", 1, 4096), ("retries", 0, 10), ("workers", 1, 1024), ("videos_per_shard", 1, 100_000),
          ("s3d_fps", 1e-3, 60.0), ("s3d_window", 8, 512))


def flag(name: str) -> str:
    """The command-line flag of a field: chunk_frames -> --chunk-frames."""
    return f"--{name.replace('_', '-')}"


@dataclass(frozen=True)
class ExtractConfig:
    # what to extract, and where to
    manifest: str                   # manifest directory (python -m manifests.build ...); required
    store: str                      # store root: a directory or an fsspec URL (s3://, gs://, ...); required
    # encoders (pipeline.backends.EncoderConfig; names and presets are checked by pipeline.encoders.build_encoders)
    encoders: tuple[str, ...] = ("clip",)  # clip, s3d; on the command line comma-separated (--encoders clip,s3d)
    preset: Literal[PRESETS] = "tiny"  # tiny: small seeded random encoders (tests, demo); vit-b-32: real weights
    clip_model: str | None = None   # CLIP hub id or local save_pretrained directory (preset vit-b-32)
    s3d_weights: str | None = None  # s3d_howto100m.pth (preset vit-b-32 with s3d)
    s3d_dict: str | None = None     # s3d_dict.npy (preset vit-b-32 with s3d)
    s3d_fps: float = 16.0           # frame rate of the S3D windows (S3D-G / MIL-NCE: 16 fps)
    s3d_window: int = 32            # frames per S3D window, a multiple of 8 (mixed_5c has T/8 steps)
    clip_normalize: Literal[CLIP_NORMALIZE] = "clip"  # CLIP mean/std normalisation; 'none' is what the
                                    # authors' code did
    resize: Literal[RESIZE_MODES] = "center-crop"  # short side + centre crop (pipeline.decode.RESIZE_MODES), or
                                    # squash to 224x224 as the authors' evaluation
    grid_dtype: Literal[GRID_DTYPES] = "float16"  # grid tokens on disk (layout.GRID_DTYPES): float16, or int8
                                    # with a float16 scale per token (~2x smaller; readers return float16 either
                                    # way). A store keeps one
    # how to run (pipeline.backends.run_shards)
    backend: Literal[BACKENDS] = "sequential"  # sequential (in this process) or ray (pipeline.backends.BACKENDS)
    workers: int = 1                # Ray actors (ray backend)
    ray_address: str | None = None  # join an existing Ray cluster instead of starting one
    videos_per_shard: int = 8       # videos per shard: the unit of work, commit and retry
    chunk_frames: int = 32          # frames per decode chunk / encoder batch
    retries: int = 1                # retries of a failed segment before recording it as a failure
    device: str | None = None       # torch device for the encoders (None: cuda when present, else cpu)
    # what to do with what the store already holds (pipeline.plan.PlanOptions)
    on_change: Literal[ON_CHANGE] = "reextract"  # a source video replaced since it was extracted: re-extract it,
                                    # keep its old features, or refuse to run (pipeline.plan.ON_CHANGE)
    retry_failed: bool = False      # extract again the videos with failure records
    repair: bool = False            # re-extract the videos of shards that verification finds damaged (missing
                                    # chunks; with deep, also chunks whose checksum differs)
    deep: bool = False              # with repair: read and check every chunk
    force_unlock: bool = False      # clear a lock left by a dead run, then take it

    def __post_init__(self) -> None:
        if isinstance(self.encoders, (str, list)):  # "clip,s3d" as --encoders takes it, or a list
            names = self.encoders.split(",") if isinstance(self.encoders, str) else self.encoders
            object.__setattr__(self, "encoders", tuple(n.strip() for n in names if n.strip()))
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):  # the choices also hold for a config built in code
            tp, value = hints[f.name], getattr(self, f.name)
            if get_origin(tp) is Literal and value not in get_args(tp):
                raise ConfigError(f"{flag(f.name)} must be one of {list(get_args(tp))}, got {value!r}")
        for name, lo, hi in BOUNDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                shown = f"{value:g}" if isinstance(value, (int, float)) else repr(value)
                raise ConfigError(f"{flag(name)} must be in [{lo:g}, {hi:g}], got {shown}")
        if self.s3d_window % 8:
            raise ConfigError(f"--s3d-window must be a multiple of 8 (mixed_5c has T/8 steps), got {self.s3d_window}")


def load_extract_config(base: dict[str, Any] | None = None, overrides: Sequence[str] = ()) -> ExtractConfig:
    """Defaults <- `base` (the flags given on the command line, by field name) <- `key=value` overrides."""
    return load_config(ExtractConfig, None, list(overrides), None, base=base)
