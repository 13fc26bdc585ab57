"""The frozen encoder of a store, rebuilt to encode texts the store does not hold (label pools, queries) and
the black frame of the published loaders' zero padding.

The store's spec says which model and preprocessing made its features; the encoder is rebuilt from it
(`tiny`: seeded, reproduced exactly; real weights: the user passes --clip-model / --s3d-weights --s3d-dict)
and refused when its spec differs from the store's in any key, so texts and features share one space.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from eval.inference.errors import InferenceError
from pipeline.encoders import Encoder, build_encoders
from pipeline.store import layout
from pipeline.store.root import spec_differences


class EncoderMismatch(InferenceError):
    """The rebuilt encoder is not the one that made the store's features."""


@dataclass(frozen=True)
class EncoderOptions:
    preset: str | None = None       # tiny | vit-b-32; None: tiny when the store's model is a tiny one
    clip_model: str | None = None   # hub id or save_pretrained directory (real CLIP)
    s3d_weights: str | None = None  # s3d_howto100m.pth
    s3d_dict: str | None = None     # s3d_dict.npy
    device: str | None = None


@dataclass(frozen=True)
class TextFeatures:
    """Encoded texts: sentence [L, Ds], words [L, W, Dw], mask [L, W] (float32 / bool)."""
    texts: tuple[str, ...]
    sentence: np.ndarray
    words: np.ndarray
    mask: np.ndarray

    def take(self, index: list[int] | np.ndarray) -> TextFeatures:
        index = np.asarray(index, np.int64)
        return TextFeatures(tuple(self.texts[i] for i in index.tolist()), self.sentence[index], self.words[index],
                            self.mask[index])


def _build_kwargs(spec: dict, opts: EncoderOptions) -> dict:
    prep = spec["preprocessing"]
    kwargs = {"resize": prep["resize"], "device": opts.device}
    if spec["encoder"] == "clip":
        kwargs.update(clip_model=opts.clip_model, clip_normalize=prep["normalize"])
    else:
        kwargs.update(s3d_weights=opts.s3d_weights, s3d_dict=opts.s3d_dict, s3d_fps=float(spec["fps"]),
                      s3d_window=int(spec["window"]), s3d_sentence_pool=spec["sentence_pool"],
                      s3d_lowercase=bool(spec["tokenizer"]["lowercase"]))
    return kwargs


def _normal(spec: dict) -> dict:
    return json.loads(json.dumps(spec, sort_keys=True))


def rebuild_encoder(store_spec: dict, opts: EncoderOptions) -> Encoder:
    """The encoder that made `store_spec`'s features; EncoderMismatch lists every differing key."""
    preset = opts.preset or ("tiny" if str(store_spec.get("model", "")).endswith("-tiny") else "vit-b-32")
    name = store_spec["encoder"]
    try:
        encoder = build_encoders([name], preset, **_build_kwargs(store_spec, opts))[name]
    except (KeyError, ValueError) as exc:  # the spec lacks a setting, or holds one the encoders do not know
        raise EncoderMismatch(f"cannot rebuild the {name} encoder from the store's spec: {exc}") from exc
    have = _normal({k: v for k, v in store_spec.items() if k not in layout.STORAGE_KEYS})  # int8 grids: same encoder
    built = _normal(encoder.spec)
    problems = spec_differences(have, built) + [f"{k}: store has {have[k]!r}, the rebuilt encoder has none"
                                                for k in sorted(set(have) - set(built))]
    if problems:
        raise EncoderMismatch(f"the {name} encoder rebuilt with preset {preset!r} differs from the store's "
                              "(pass the weights the store was extracted with):\n  " + "\n  ".join(problems))
    return encoder


class TextEncoder:
    """Encodes texts once each (a run asks for the same labels many times)."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, texts: list[str] | tuple[str, ...]) -> TextFeatures:
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            out = self.encoder.encode_text(new)
            for i, text in enumerate(new):
                self._cache[text] = (out["sentence"][i], out["words"][i], out["mask"][i])
        rows = [self._cache[t] for t in texts]
        if not rows:
            raise ValueError("no texts to encode")
        return TextFeatures(tuple(texts), *(np.stack([r[k] for r in rows]) for k in range(3)))


def black_row(encoder: Encoder) -> dict[str, np.ndarray]:
    """Features of an all-black input as the store would hold them (float16): a frame for CLIP ({"global":
    [Dg], "grid": [gh, gw, D]}), a window of black frames for S3D ({"global", "grid": [T', gh, gw, D]})."""
    size = encoder.frame_size
    if encoder.spec.get("window"):
        out = encoder.encode_windows(np.zeros((1, int(encoder.spec["window"]), size, size, 3), np.uint8))
    else:
        out = encoder.encode_frames(np.zeros((1, size, size, 3), np.uint8))
    return {k: out[k][0].astype(np.float16) for k in ("global", "grid")}
