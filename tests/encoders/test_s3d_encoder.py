"""S3D encoder: tiny model outputs, MIL-NCE word tokenisation and pooling, dictionary loading."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.encoders import DictionaryError, build_encoders
from pipeline.encoders.s3d_text import WordTokenizer, load_dictionary, whole_words

from .conftest import random_frames

HAND_DICT = ["cut", "the", "onions", "Fry", "don't", "onions"]  # 'onions' twice: the later id wins (6)


def test_tiny_spec(tiny_s3d):
    spec = tiny_s3d.spec
    assert json.loads(json.dumps(spec)) == spec
    assert spec["encoder"] == "s3d" and spec["model"] == "s3dg-tiny" and spec["weights_hashed"] == "state_dict"
    assert spec["preprocessing"] == {"size": 224, "resize": "center-crop", "value_range": [0, 1], "normalize": "none"}
    assert spec["grid"] == [2, 7, 7] and spec["window"] == 16 and spec["fps"] == 16.0
    assert spec["dims"] == {"global": 128, "grid": 128, "sentence": 256, "words": 256}
    assert spec["max_words"] == 20 and spec["sentence_pool"] == "max"
    assert spec["tokenizer"]["lowercase"] is True and spec["tokenizer"]["pattern"] == "[\\w']+"


@pytest.mark.parametrize("window", [16, 32])
def test_tiny_window_shapes_and_global_is_grid_mean(window):
    encoder = build_encoders(["s3d"], "tiny", device="cpu", s3d_window=window)["s3d"]
    out = encoder.encode_windows(random_frames((2, window, 224, 224, 3)))
    assert out["grid"].shape == (2, window // 8, 7, 7, 128) and out["global"].shape == (2, 128)
    assert out["grid"].dtype == np.float32 and out["global"].dtype == np.float32
    assert out["grid"].flags.c_contiguous
    np.testing.assert_allclose(out["global"], out["grid"].mean(axis=(1, 2, 3)), rtol=1e-6, atol=1e-7)


def test_windows_are_channels_last_mixed_5c_in_unit_range(tiny_s3d):
    frames = random_frames((1, 16, 224, 224, 3), seed=2)
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 255.0
    with torch.inference_mode():
        expected = tiny_s3d.model.mixed_5c_features(video).permute(0, 2, 3, 4, 1).numpy()
    np.testing.assert_allclose(tiny_s3d.encode_windows(frames)["grid"], expected, rtol=1e-6, atol=1e-7)


def test_window_length_must_match_the_spec(tiny_s3d):
    with pytest.raises(ValueError, match="s3d.encode_windows"):
        tiny_s3d.encode_windows(random_frames((1, 32, 224, 224, 3)))
    assert tiny_s3d.encode_windows(np.zeros((0, 16, 224, 224, 3), np.uint8))["grid"].shape == (0, 2, 7, 7, 128)


def test_tiny_build_is_deterministic(tiny_s3d):
    again = build_encoders(["s3d"], "tiny", device="cpu", s3d_window=16)["s3d"]
    assert again.spec["weights_sha256"] == tiny_s3d.spec["weights_sha256"]
    frames = random_frames((1, 16, 224, 224, 3), seed=3)
    assert np.array_equal(again.encode_windows(frames)["grid"], tiny_s3d.encode_windows(frames)["grid"])


def test_word_tokenizer_drops_oov_and_honours_lowercase():
    lower = WordTokenizer(HAND_DICT, lowercase=True)
    ids, mask = lower(["Cut the ONIONS, and Fry; don't!", "", "nothing here"])
    assert ids[0, :4].tolist() == [1, 2, 6, 5] and not ids[0, 4:].any()  # 'fry' (lowered) is not in the dict
    assert mask.sum(axis=1).tolist() == [4, 0, 0] and ids.dtype == np.int64 and mask.dtype == bool
    cased = WordTokenizer(HAND_DICT, lowercase=False)
    assert cased(["Cut the ONIONS, and Fry"])[0][0, :2].tolist() == [2, 4]  # 'Cut', 'ONIONS' dropped
    assert cased.spec()["lowercase"] is False and lower.spec()["oov"] == "drop"


def test_word_tokenizer_caps_at_max_words():
    tokenizer = WordTokenizer(["a", "b"], max_words=20)
    ids, mask = tokenizer([" ".join(["a", "zz", "b"] * 15)])
    assert ids.shape == (1, 20) and mask.all()
    assert ids[0].tolist() == [1, 2] * 10


def test_tiny_dictionary_is_clip_whole_words():
    words = whole_words(["the</w>", "th", "e</w>", "Ā</w>", "can't</w>", "hello</w>", "the</w>", "12</w>"])
    assert words == ("the", "e", "hello")


def test_text_features_are_relu_fc1_of_word2vec(tiny_s3d):
    texts = ["cut the onions", "fry them in a pan until golden", "qqqzzz"]
    out = tiny_s3d.encode_text(texts)
    ids, mask = tiny_s3d.tokenizer(texts)
    module = tiny_s3d.model.text_module
    with torch.inference_mode():
        words = F.relu(module.fc1(module.word_embd(torch.from_numpy(ids)))).numpy()
    np.testing.assert_allclose(out["words"], words, rtol=1e-6, atol=1e-6)
    assert np.array_equal(out["mask"], mask) and out["mask"].sum(1).tolist() == [3, 7, 0]
    # MIL-NCE pooling: max over all 20 positions, padding included.
    np.testing.assert_allclose(out["sentence"], words.max(axis=1), rtol=1e-6, atol=1e-6)
    assert out["words"].shape == (3, 20, 256) and out["sentence"].shape == (3, 256)


def test_masked_max_option():
    encoder = build_encoders(["s3d"], "tiny", device="cpu", s3d_window=16, s3d_sentence_pool="max-masked")["s3d"]
    out = encoder.encode_text(["cut the onions", "qqqzzz"])
    np.testing.assert_allclose(out["sentence"][0], out["words"][0, :3].max(axis=0), rtol=1e-6)
    assert not out["sentence"][1].any()  # no real word: zeros rather than the padding embedding
    assert encoder.spec["sentence_pool"] == "max-masked"
    unmasked = build_encoders(["s3d"], "tiny", device="cpu", s3d_window=16)["s3d"].encode_text(["cut the onions"])
    assert (unmasked["sentence"][0] >= out["sentence"][0]).all()


def test_lowercase_option_reaches_the_encoder():
    encoder = build_encoders(["s3d"], "tiny", device="cpu", s3d_window=16, s3d_lowercase=False)["s3d"]
    assert encoder.spec["tokenizer"]["lowercase"] is False
    assert encoder.encode_text(["CUT THE ONIONS", "cut the onions"])["mask"].sum(1).tolist() == [0, 3]


def test_dictionary_files(tmp_path):
    unicode_path, bytes_path = tmp_path / "u.npy", tmp_path / "b.npy"
    np.save(unicode_path, np.array(["cut", "the"]))
    np.save(bytes_path, np.array([b"cut", b"the"]))
    assert load_dictionary(unicode_path) == ["cut", "the"] == load_dictionary(bytes_path)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array(["cut", "the"], dtype=object), allow_pickle=True)
    with pytest.raises(DictionaryError, match="objects.npy.*object-dtype"):
        load_dictionary(objects)
    two_d = tmp_path / "two_d.npy"
    np.save(two_d, np.array([["a", "b"]]))
    with pytest.raises(DictionaryError, match="two_d.npy: expected a 1-D array"):
        load_dictionary(two_d)
    with pytest.raises(DictionaryError, match="missing.npy not found.*--s3d-dict"):
        load_dictionary(tmp_path / "missing.npy")


def test_dictionary_larger_than_word_table_is_refused(tiny_s3d):
    from pipeline.encoders.s3d import S3dEncoder

    too_many = WordTokenizer([f"w{i}" for i in range(tiny_s3d.model.config.num_embeddings)])
    with pytest.raises(ValueError, match="dictionary and weights differ"):
        S3dEncoder(tiny_s3d.model, too_many, model_name="x", weights_sha256="", weights_hashed="state_dict",
                   window=16, device="cpu")
