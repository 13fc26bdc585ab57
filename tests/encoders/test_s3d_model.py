"""S3D-G layout (must load the published s3d_howto100m.pth unchanged), geometry, and checkpoint loading."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.encoders import S3DLoadError, build_encoders
from pipeline.encoders.s3d import check_state_dict, load_checkpoint, load_full_s3d
from pipeline.encoders.s3d_model import S3DG, S3DConfig, TFSameMaxPool3d
from pipeline.encoders.weights import sha256_file

from .conftest import random_frames

KEY_TABLE = Path(__file__).with_name("s3d_howto100m_keys.txt")
PUBLISHED_FLOAT_PARAMETERS = 31_232_424  # sum of the float tensors in the table below


def _published_layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    for line in KEY_TABLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            layout[key] = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
    return layout


@pytest.fixture(scope="module")
def full_model() -> S3DG:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        model = S3DG(S3DConfig()).eval()
        for module in model.modules():  # non-trivial BN statistics, so the round trip checks buffers too
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(1234)
    return model


@pytest.fixture(scope="module")
def checkpoint(full_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("s3d") / "s3d_howto100m.pth"
    torch.save(full_model.state_dict(), path)
    return path


def test_full_state_dict_matches_published_layout(full_model):
    layout = _published_layout()
    ours = {k: tuple(v.shape) for k, v in full_model.state_dict().items()}
    assert len(layout) == 537 and len(ours) == 537
    assert sorted(ours) == sorted(layout)
    assert {k: s for k, s in ours.items() if layout[k] != s} == {}
    floats = sum(v.numel() for v in full_model.state_dict().values() if v.is_floating_point())
    assert floats == PUBLISHED_FLOAT_PARAMETERS
    # A few anchors written out by hand from the public s3dg.py.
    assert ours["conv1.conv1.weight"] == (64, 24, 2, 4, 4)
    assert ours["conv_2c.conv2.weight"] == (192, 192, 3, 1, 1)
    assert ours["mixed_5c.conv_b1_b.conv1.weight"] == (384, 192, 1, 3, 3)
    assert ours["mixed_5c.gating_b3.fc.weight"] == (128, 128)
    assert ours["fc.weight"] == (512, 1024)
    assert ours["text_module.word_embd.weight"] == (66250, 300)
    assert ours["text_module.fc1.weight"] == (2048, 300) and ours["text_module.fc2.weight"] == (512, 2048)


def test_tiny_model_has_the_same_keys_with_smaller_shapes():
    tiny = S3DG(S3DConfig(width_divisor=8, num_embeddings=50, word_dim=16)).state_dict()
    layout = _published_layout()
    assert sorted(tiny) == sorted(layout)
    assert tiny["conv1.conv1.weight"].shape == (8, 24, 2, 4, 4)
    assert tiny["mixed_5c.conv_b0.conv1.weight"].shape == (48, 104, 1, 1, 1)
    assert tiny["text_module.word_embd.weight"].shape == (50, 16)


def test_space_to_depth_channel_order():
    b, c, t, h, w = 1, 3, 4, 6, 8
    video = torch.arange(b * c * t * h * w, dtype=torch.float32).reshape(b, c, t, h, w)
    out = S3DG.space_to_depth(video)
    assert out.shape == (1, 24, 2, 3, 4)
    for dt in range(2):
        for dh in range(2):
            for dw in range(2):
                for ch in range(c):
                    channel = ((dt * 2 + dh) * 2 + dw) * c + ch
                    assert torch.equal(out[0, channel], video[0, ch, dt::2, dh::2, dw::2])


def test_tf_same_pooling_padding_and_sizes():
    assert TFSameMaxPool3d((1, 3, 3), (1, 2, 2)).padding == (0, 1, 0, 1, 0, 0)
    assert TFSameMaxPool3d((3, 3, 3), (2, 2, 2)).padding == (0, 1, 0, 1, 0, 1)
    assert TFSameMaxPool3d((2, 2, 2), (2, 2, 2)).padding == (0, 0, 0, 0, 0, 0)
    x = torch.rand(1, 2, 16, 112, 112)
    assert TFSameMaxPool3d((1, 3, 3), (1, 2, 2))(x).shape[2:] == (16, 56, 56)
    assert TFSameMaxPool3d((3, 3, 3), (2, 2, 2))(torch.rand(1, 2, 16, 28, 28)).shape[2:] == (8, 14, 14)


@pytest.mark.slow
def test_full_size_mixed_5c_grid_shape_for_32_frames(full_model):
    with torch.inference_mode():
        grid = full_model.mixed_5c_features(torch.rand(1, 3, 32, 224, 224))
    assert grid.shape == (1, 1024, 4, 7, 7) and torch.isfinite(grid).all()


def test_checkpoint_round_trip_through_real_loader(full_model, checkpoint):
    loaded = load_full_s3d(checkpoint)
    expected = full_model.state_dict()
    got = loaded.state_dict()
    assert list(got) == list(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert not loaded.training


def test_checkpoint_without_batch_counters_still_loads(full_model, tmp_path):
    state = {k: v for k, v in full_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    model = load_full_s3d(tmp_path / "old.pth")
    assert int(model.mixed_4b.conv_b0.bn1.num_batches_tracked) == 0
    assert torch.equal(model.mixed_4b.conv_b0.bn1.running_var, full_model.mixed_4b.conv_b0.bn1.running_var)


def test_vit_b_32_preset_builds_s3d_from_files(checkpoint, tmp_path):
    dictionary = tmp_path / "s3d_dict.npy"
    np.save(dictionary, np.array(["cut", "the", "onions", "fry"]))
    encoder = build_encoders(["s3d"], "vit-b-32", s3d_weights=str(checkpoint), s3d_dict=str(dictionary),
                             s3d_window=16, device="cpu")["s3d"]
    spec = encoder.spec
    assert json.loads(json.dumps(spec)) == spec
    assert spec["model"] == "s3dg-howto100m" and spec["weights_sha256"] == sha256_file(checkpoint)
    assert spec["grid"] == [2, 7, 7] and spec["dims"] == {"global": 1024, "grid": 1024, "sentence": 2048, "words": 2048}
    assert spec["tokenizer"]["dictionary_sha256"] == sha256_file(dictionary)
    assert spec["tokenizer"]["vocab_size"] == 4
    text = encoder.encode_text(["Cut the ONIONS", "nothing known"])
    assert text["mask"].sum(1).tolist() == [3, 0] and text["words"].shape == (2, 20, 2048)


@pytest.mark.slow
def test_full_size_encode_windows_16_frames(checkpoint, tmp_path):
    dictionary = tmp_path / "s3d_dict.npy"
    np.save(dictionary, np.array(["word"]))
    encoder = build_encoders(["s3d"], "vit-b-32", s3d_weights=str(checkpoint), s3d_dict=str(dictionary),
                             s3d_window=16, device="cpu")["s3d"]
    out = encoder.encode_windows(random_frames((1, 16, 224, 224, 3)))
    assert out["grid"].shape == (1, 2, 7, 7, 1024) and out["global"].shape == (1, 1024)
    np.testing.assert_allclose(out["global"], out["grid"].mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)


def test_wrong_keys_are_listed(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"text_module.word_embd.weight": torch.zeros(10, 300), "junk.weight": torch.zeros(1)}, path)
    with pytest.raises(S3DLoadError) as error:
        load_full_s3d(path)
    message = str(error.value)
    assert "wrong.pth" in message and "unexpected keys (1): junk.weight" in message
    assert "missing keys (460)" in message and "conv1.conv1.weight" in message


def test_shape_mismatch_and_module_prefix_are_explained(full_model):
    state = dict(full_model.state_dict())
    state["fc.weight"] = torch.zeros(256, 1024)
    expected = r"shape mismatches \(1\): fc.weight \[256, 1024\] \(expected \[512, 1024\]\)"
    with pytest.raises(S3DLoadError, match=expected):
        check_state_dict(S3DG(S3DConfig()), state, "x.pth")
    prefixed = {f"module.{k}": v for k, v in full_model.state_dict().items()}
    with pytest.raises(S3DLoadError, match="DataParallel"):
        check_state_dict(S3DG(S3DConfig()), prefixed, "x.pth")


def test_missing_and_unsafe_checkpoints(tmp_path):
    with pytest.raises(S3DLoadError, match="s3d_howto100m.pth.*--s3d-weights"):
        load_checkpoint(tmp_path / "s3d_howto100m.pth")
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"args": argparse.Namespace(lr=1.0)}, unsafe)  # needs full unpickling: refused
    with pytest.raises(S3DLoadError, match="unsafe.pth: not a readable weights-only"):
        load_checkpoint(unsafe)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(S3DLoadError, match="garbage.pth"):
        load_checkpoint(garbage)
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(S3DLoadError, match="expected a state_dict"):
        load_checkpoint(not_a_dict)


def test_vit_b_32_needs_both_s3d_paths(checkpoint):
    with pytest.raises(S3DLoadError, match="--s3d-weights and --s3d-dict"):
        build_encoders(["s3d"], "vit-b-32")
    with pytest.raises(S3DLoadError, match="needs --s3d-dict"):
        build_encoders(["s3d"], "vit-b-32", s3d_weights=str(checkpoint))
