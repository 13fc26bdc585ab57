"""CLIP encoder outputs against transformers' own CLIPModel computations on tiny random models."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from pipeline.encoders import ClipLoadError, build_encoders
from pipeline.encoders.clip import CLIP_MEAN, CLIP_STD, MAX_WORDS, build_tiny_clip, tiny_clip_config
from pipeline.encoders.weights import sha256_file

from .conftest import random_frames


def _pooled(output) -> torch.Tensor:
    """transformers 5 returns a ModelOutput from get_*_features, 4.x a tensor."""
    return output.pooler_output if hasattr(output, "pooler_output") else output


def _pixels(frames: np.ndarray, normalize: bool) -> torch.Tensor:
    x = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    if normalize:
        x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return x


def _manual_tokens(model, pixels: torch.Tensor) -> torch.Tensor:
    """Post-layernorm written out by hand, then the visual projection, on all 50 tokens."""
    ln, proj = model.vision_model.post_layernorm, model.visual_projection.weight
    with torch.inference_mode():
        hidden = model.vision_model(pixel_values=pixels).last_hidden_state
        mean = hidden.mean(-1, keepdim=True)
        var = hidden.var(-1, unbiased=False, keepdim=True)
        normed = (hidden - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias
        return normed @ proj.T


def test_spec_shapes_and_dtypes(tiny_clip):
    spec = tiny_clip.spec
    assert json.loads(json.dumps(spec)) == spec
    assert spec["encoder"] == "clip" and spec["grid"] == [7, 7] and spec["max_words"] == MAX_WORDS
    assert spec["preprocessing"] == {"size": 224, "resize": "center-crop", "value_range": [0, 1], "normalize": "clip"}
    assert spec["dims"] == {"global": 64, "grid": 64, "sentence": 64, "words": 64}
    assert tiny_clip.frame_size == 224 and tiny_clip.device == torch.device("cpu")
    out = tiny_clip.encode_frames(random_frames((3, 224, 224, 3)))
    assert out["global"].shape == (3, 64) and out["grid"].shape == (3, 7, 7, 64)
    assert out["global"].dtype == np.float32 and out["grid"].dtype == np.float32
    assert out["global"].flags.c_contiguous and out["grid"].flags.c_contiguous


@pytest.mark.parametrize("normalize", ["clip", "none"])
def test_cls_equals_get_image_features(normalize):
    encoder = build_encoders(["clip"], "tiny", device="cpu", clip_normalize=normalize)["clip"]
    frames = random_frames((4, 224, 224, 3), seed=1)
    with torch.inference_mode():
        expected = _pooled(encoder.model.get_image_features(pixel_values=_pixels(frames, normalize == "clip")))
    np.testing.assert_allclose(encoder.encode_frames(frames)["global"], expected.numpy(), rtol=1e-5, atol=1e-5)


def test_grid_is_row_major_projected_patch_tokens(tiny_clip):
    frames = random_frames((2, 224, 224, 3), seed=2)
    manual = _manual_tokens(tiny_clip.model, _pixels(frames, normalize=True)).numpy()
    out = tiny_clip.encode_frames(frames)
    for row, col in [(0, 0), (0, 6), (3, 2), (6, 0), (6, 6)]:
        np.testing.assert_allclose(out["grid"][:, row, col], manual[:, 1 + 7 * row + col], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["grid"].reshape(2, 49, -1), manual[:, 1:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["global"], manual[:, 0], rtol=1e-5, atol=1e-5)


def test_patch_grid_follows_image_content(tiny_clip):
    """Inverting only the pixels of patch (row 2, col 5) changes grid cell [2, 5] the most: the row-major
    layout checked against image content rather than against an index formula."""
    frames = random_frames((1, 224, 224, 3), seed=3)
    edited = frames.copy()
    edited[0, 64:96, 160:192] = 255 - edited[0, 64:96, 160:192]
    a, b = tiny_clip.encode_frames(frames)["grid"][0], tiny_clip.encode_frames(edited)["grid"][0]
    change = np.abs(a - b).sum(-1)
    assert np.unravel_index(change.argmax(), change.shape) == (2, 5)


def test_sentence_equals_get_text_features_and_words_are_positions_1_to_20(tiny_clip):
    texts = ["a photo of a cat", "", "Cut the onions, then fry them!", "word " * 40]
    ids = tiny_clip.token_ids(texts)
    out = tiny_clip.encode_text(texts)
    model = tiny_clip.model
    with torch.inference_mode():
        sentence = _pooled(model.get_text_features(input_ids=torch.from_numpy(ids)))
        hidden = model.text_model(input_ids=torch.from_numpy(ids)).last_hidden_state
        projected = model.text_projection(hidden).numpy()
    np.testing.assert_allclose(out["sentence"], sentence.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["words"], projected[:, 1 : MAX_WORDS + 1], rtol=1e-5, atol=1e-5)
    assert out["sentence"].shape == (4, 64) and out["words"].shape == (4, MAX_WORDS, 64)
    assert out["mask"].dtype == bool and out["mask"].shape == (4, MAX_WORDS)


def test_sentence_does_not_depend_on_padding_style(tiny_clip):
    """transformers' usual padding (EOT ids + attention mask) gives the same EOT output as CLIP's zeros."""
    ids = tiny_clip.token_ids(["a photo of a cat"])
    hf_ids = ids.copy()
    hf_ids[0, 7:] = 49407
    attention = (np.arange(77) < 7).astype(np.int64)[None]
    with torch.inference_mode():
        hf = _pooled(tiny_clip.model.get_text_features(input_ids=torch.from_numpy(hf_ids),
                                                       attention_mask=torch.from_numpy(attention)))
    np.testing.assert_allclose(tiny_clip.encode_text(["a photo of a cat"])["sentence"], hf.numpy(), atol=1e-5)


def test_mask_on_hand_counted_texts(tiny_clip):
    texts = [
        "a photo of a cat",  # 5 BPE tokens
        "",  # none
        " ".join(["word"] * 19),  # EOT lands at position 20: the last slot is EOT, masked
        " ".join(["word"] * 20),  # exactly 20 words: all real
        " ".join(["word"] * 90),  # truncated: all real
    ]
    mask = tiny_clip.encode_text(texts)["mask"]
    assert mask.sum(axis=1).tolist() == [5, 0, 19, 20, 20]
    assert mask[0].tolist() == [True] * 5 + [False] * 15  # real tokens come first


def test_batching_does_not_change_results(tiny_clip):
    texts = ["a photo of a cat", "Cut the onions, then fry them!", ""]
    together = tiny_clip.encode_text(texts)
    for i, text in enumerate(texts):
        alone = tiny_clip.encode_text([text])
        np.testing.assert_allclose(alone["words"][0], together["words"][i], atol=1e-5)
        np.testing.assert_allclose(alone["sentence"][0], together["sentence"][i], atol=1e-5)
    frames = random_frames((3, 224, 224, 3), seed=4)
    all_frames = tiny_clip.encode_frames(frames)["grid"]
    np.testing.assert_allclose(tiny_clip.encode_frames(frames[1:2])["grid"][0], all_frames[1], atol=1e-5)


def test_empty_inputs(tiny_clip):
    out = tiny_clip.encode_text([])
    assert out["sentence"].shape == (0, 64) and out["words"].shape == (0, MAX_WORDS, 64)
    assert out["mask"].shape == (0, MAX_WORDS)
    assert tiny_clip.encode_frames(np.zeros((0, 224, 224, 3), np.uint8))["grid"].shape == (0, 7, 7, 64)


def test_read_only_and_flipped_frames(tiny_clip):
    frames = random_frames((2, 224, 224, 3), seed=8)
    expected = tiny_clip.encode_frames(frames)["grid"]
    read_only = np.frombuffer(frames.tobytes(), dtype=np.uint8).reshape(frames.shape)  # like an ffmpeg pipe read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(tiny_clip.encode_frames(read_only)["grid"], expected)
    flipped = frames[:, :, ::-1]  # horizontal flip view, negative stride
    np.testing.assert_array_equal(tiny_clip.encode_frames(flipped)["grid"],
                                  tiny_clip.encode_frames(np.ascontiguousarray(flipped))["grid"])


@pytest.mark.parametrize("bad", [np.zeros((2, 224, 224, 3), np.float32), np.zeros((2, 112, 112, 3), np.uint8),
                                 np.zeros((224, 224, 3), np.uint8)])
def test_bad_frames_are_rejected(tiny_clip, bad):
    with pytest.raises(ValueError, match="clip.encode_frames"):
        tiny_clip.encode_frames(bad)


def test_tiny_build_is_deterministic(tiny_clip):
    again = build_encoders(["clip"], "tiny", device="cpu")["clip"]
    assert again.spec == tiny_clip.spec
    frames = random_frames((1, 224, 224, 3), seed=5)
    assert np.array_equal(again.encode_frames(frames)["grid"], tiny_clip.encode_frames(frames)["grid"])
    assert build_tiny_clip(seed=1).state_dict()["visual_projection.weight"].ne(
        tiny_clip.model.state_dict()["visual_projection.weight"]).any()


def test_vit_b_32_path_loads_a_saved_directory(tmp_path, tiny_clip):
    saved = build_tiny_clip(seed=7)
    saved.save_pretrained(tmp_path / "clip")
    encoder = build_encoders(["clip"], "vit-b-32", clip_model=str(tmp_path / "clip"), device="cpu")["clip"]
    weights = tmp_path / "clip" / "model.safetensors"
    assert encoder.spec["weights_sha256"] == sha256_file(weights) and encoder.spec["weights_hashed"] == "file"
    assert encoder.spec["model"] == "clip-vit-p32-w64-l2-d64"
    assert encoder.spec["weights_sha256"] != tiny_clip.spec["weights_sha256"]
    frames = random_frames((2, 224, 224, 3), seed=6)
    expected = _manual_tokens(saved, _pixels(frames, normalize=True)).numpy()
    np.testing.assert_allclose(encoder.encode_frames(frames)["grid"].reshape(2, 49, -1), expected[:, 1:], atol=1e-5)
    with torch.inference_mode():
        ids = torch.from_numpy(encoder.token_ids(["a photo of a dog"]))
        sentence = _pooled(saved.get_text_features(input_ids=ids)).numpy()
    np.testing.assert_allclose(encoder.encode_text(["a photo of a dog"])["sentence"], sentence, atol=1e-5)


def test_vit_b_32_errors_say_what_to_do(tmp_path):
    with pytest.raises(ClipLoadError, match="--clip-model"):
        build_encoders(["clip"], "vit-b-32")
    with pytest.raises(ClipLoadError, match="not found.*save_pretrained"):
        build_encoders(["clip"], "vit-b-32", clip_model=str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClipLoadError, match="empty"):
        build_encoders(["clip"], "vit-b-32", clip_model=str(empty))


def test_wrong_architecture_is_refused(tmp_path):
    config = tiny_clip_config()
    config.vision_config.patch_size = 16
    from transformers import CLIPModel

    CLIPModel(config).save_pretrained(tmp_path / "p16")
    with pytest.raises(ClipLoadError, match="7x7 grid"):
        build_encoders(["clip"], "vit-b-32", clip_model=str(tmp_path / "p16"))


def test_incomplete_checkpoint_is_refused_not_randomly_filled(tmp_path):
    from safetensors.torch import load_file, save_file

    build_tiny_clip().save_pretrained(tmp_path / "clip")
    weights = tmp_path / "clip" / "model.safetensors"
    state = {k: v for k, v in load_file(weights).items() if not k.startswith("text_model.final_layer_norm")}
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ClipLoadError, match="lacks or mis-shapes 2 CLIP weights: text_model.final_layer_norm.bias"):
        build_encoders(["clip"], "vit-b-32", clip_model=str(tmp_path / "clip"))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_tiny_word_features_say_which_word_rather_than_where(tiny_clip):
    """The same colour word in captions of other lengths stays closer to itself than to another colour word at
    the same position (a random CLIP's position embeddings would dominate; see TINY_TOKEN_SCALE)."""
    colours = ["red", "blue", "green", "yellow"]
    short = tiny_clip.encode_text([f"spin {c} circle" for c in colours])["words"][:, 1]          # position 2
    long = tiny_clip.encode_text([f"um so now we spin the {c} circle" for c in colours])["words"][:, 6]
    cos = _unit(short) @ _unit(long).T                       # [short colour, long colour]
    assert (cos.argmax(1) == np.arange(4)).all()             # nearest across contexts: the same word
    same_position = _unit(short) @ _unit(short).T
    assert np.diag(cos).mean() > same_position[~np.eye(4, dtype=bool)].mean()


def test_tiny_patch_filters_are_smooth(tiny_clip):
    """Every patch filter of the tiny model lies in the span of the low-frequency 2-D cosines, drawn at the
    scale asked for."""
    from pipeline.encoders.clip import TINY_PATCH_FREQUENCY, smooth_filters

    weight = tiny_clip.model.vision_model.embeddings.patch_embedding.weight.detach()
    k = weight.shape[-1]
    x = (torch.arange(k, dtype=torch.float32) + 0.5) / k
    waves = [torch.cos(torch.pi * f * x) for f in range(TINY_PATCH_FREQUENCY + 1)]
    basis = torch.stack([wy[:, None] * wx[None] for wy in waves for wx in waves]).reshape(len(waves) ** 2, -1)
    flat = weight.reshape(-1, k * k)
    coef = torch.linalg.lstsq(basis.T, flat.T).solution
    assert torch.allclose(basis.T @ coef, flat.T, atol=1e-5)
    assert smooth_filters(weight.shape, 0.5).std().item() == pytest.approx(0.5, rel=1e-4)
