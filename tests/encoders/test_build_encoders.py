"""The `build_encoders` contract the extraction pipeline relies on."""
from __future__ import annotations

import json

import pytest
import torch

from pipeline.encoders import ENCODER_NAMES, PRESETS, ClipEncoder, Encoder, S3dEncoder, build_encoders


def test_builds_both_in_order_with_common_attributes():
    encoders = build_encoders(["s3d", "clip"], "tiny", s3d_window=16, s3d_fps=5.0, resize="squash")
    assert list(encoders) == ["s3d", "clip"]
    assert isinstance(encoders["clip"], ClipEncoder) and isinstance(encoders["s3d"], S3dEncoder)
    for name, encoder in encoders.items():
        assert isinstance(encoder, Encoder) and encoder.name == name
        assert encoder.frame_size == 224 and encoder.device == torch.device("cpu")  # no GPU in CI
        spec = encoder.spec
        assert json.loads(json.dumps(spec)) == spec
        required = {"encoder", "model", "weights_sha256", "preprocessing", "grid", "dims", "max_words", "tokenizer"}
        assert required <= set(spec)
        assert spec["preprocessing"]["resize"] == "squash" and len(spec["weights_sha256"]) == 64
        assert not encoder.model.training
        assert not any(p.requires_grad for p in encoder.model.parameters())
    assert encoders["s3d"].spec["fps"] == 5.0 and encoders["s3d"].spec["preprocessing"]["normalize"] == "none"


def test_duplicate_names_build_once():
    assert list(build_encoders(["clip", "clip"], "tiny")) == ["clip"]


@pytest.mark.parametrize("names", [["clip", "vit"], [], ["CLIP"]])
def test_unknown_names_list_the_valid_ones(names):
    with pytest.raises(ValueError, match=r"valid names are \['clip', 's3d'\]"):
        build_encoders(names, "tiny")


def test_a_bare_string_is_not_a_list_of_names():
    with pytest.raises(TypeError, match="not a string"):
        build_encoders("clip", "tiny")


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid presets are \['tiny', 'vit-b-32'\]"):
        build_encoders(["clip"], "vit-l-14")
    assert PRESETS == ("tiny", "vit-b-32") and ENCODER_NAMES == ("clip", "s3d")


@pytest.mark.parametrize("options, message", [
    ({"clip_normalize": "imagenet"}, "clip_normalize"),
    ({"resize": "pad"}, "resize"),
])
def test_bad_clip_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_encoders(["clip"], "vit-b-32", clip_model="/does/not/matter", **options)


@pytest.mark.parametrize("options, message", [
    ({"s3d_window": 12}, "multiple of 8"),
    ({"s3d_window": 0}, "multiple of 8"),
    ({"s3d_fps": 0.0}, "s3d_fps"),
    ({"s3d_fps": 1e6}, r"s3d_fps must be in \(0, 120\]"),  # would make ffmpeg repeat frames without end
    ({"s3d_sentence_pool": "mean"}, "sentence_pool"),
    ({"resize": "pad"}, "resize"),
])
def test_bad_s3d_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_encoders(["s3d"], "tiny", **options)


def test_bad_device():
    with pytest.raises(ValueError, match="device"):
        build_encoders(["clip"], "tiny", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            build_encoders(["clip"], "tiny", device="cuda")


@pytest.mark.gpu
def test_gpu_autocast_outputs_are_float32_and_close_to_cpu():
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    cpu = build_encoders(["clip"], "tiny", device="cpu")["clip"].encode_frames(frames)
    gpu_encoder = build_encoders(["clip"], "tiny", device="cuda")["clip"]
    assert gpu_encoder.precision.startswith("autocast-")
    gpu = gpu_encoder.encode_frames(frames)
    assert gpu["grid"].dtype == np.float32
    np.testing.assert_allclose(gpu["grid"], cpu["grid"], atol=0.05, rtol=0.05)
