"""Frozen encoders whose per-frame features groundcache caches: CLIP ViT-B/32 and S3D-G (MIL-NCE).

`build_encoders` is the one entry point the extraction pipeline uses. Every encoder exposes `name`,
`spec` (JSON-serialisable; stored in the store attrs and compared by readers), `frame_size` (224),
`device`, and `encode_text`; CLIP adds `encode_frames` (per frame), S3D adds `encode_windows` (per
window of `spec["window"]` frames). Frames arrive decoded, resized and cropped as uint8 RGB.

Presets: "tiny" builds seeded random models of the real architectures (tests, demo); "vit-b-32"
loads real weights (CLIP: hub id or save_pretrained directory; S3D: s3d_howto100m.pth + s3d_dict.npy).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .clip import ClipEncoder, ClipLoadError, build_clip_encoder
from .clip_tokenizer import ClipTokenizer, TokenizerFileError
from .s3d import S3dEncoder, S3DLoadError, build_s3d_encoder
from .s3d_text import DictionaryError
from .weights import EncoderLoadError, sha256_file, state_dict_sha256

ENCODER_NAMES = ("clip", "s3d")
PRESETS = ("tiny", "vit-b-32")


@runtime_checkable
class Encoder(Protocol):
    name: str
    spec: dict[str, Any]
    frame_size: int
    device: torch.device

    def encode_text(self, texts: list[str]) -> dict[str, np.ndarray]: ...


def build_encoders(names: Sequence[str], preset: str, *, clip_model: str | None = None,
                   s3d_weights: str | None = None, s3d_dict: str | None = None,
                   s3d_fps: float = 16.0, s3d_window: int = 32, clip_normalize: str = "clip",
                   resize: str = "center-crop", device: str | None = None,
                   s3d_lowercase: bool = True, s3d_sentence_pool: str = "max") -> dict[str, Encoder]:
    """Build the named encoders for a preset, keyed by name in the order given.

    Raises ValueError for unknown names/presets or options, and an EncoderLoadError (a ValueError:
    ClipLoadError / S3DLoadError / DictionaryError) naming the path, the problem, what to download and
    how to pass it, on one line, when real weights cannot be loaded.
    """
    if isinstance(names, str):
        raise TypeError("names must be a sequence of encoder names such as ['clip', 's3d'], not a string")
    unknown = [n for n in names if n not in ENCODER_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown encoder name(s) {unknown or list(names)}: valid names are {list(ENCODER_NAMES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: valid presets are {list(PRESETS)}")
    encoders: dict[str, Encoder] = {}
    for name in dict.fromkeys(names):
        if name == "clip":
            encoders[name] = build_clip_encoder(preset, clip_model=clip_model, normalize=clip_normalize,
                                                resize=resize, device=device)
        else:
            encoders[name] = build_s3d_encoder(preset, weights=s3d_weights, dictionary=s3d_dict, fps=s3d_fps,
                                               window=s3d_window, resize=resize, lowercase=s3d_lowercase,
                                               sentence_pool=s3d_sentence_pool, device=device)
    return encoders


__all__ = [
    "ENCODER_NAMES", "PRESETS", "ClipEncoder", "ClipLoadError", "ClipTokenizer", "DictionaryError", "Encoder",
    "EncoderLoadError", "S3DLoadError", "S3dEncoder", "TokenizerFileError", "build_encoders", "sha256_file",
    "state_dict_sha256",
]
