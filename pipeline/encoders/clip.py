"""Frozen CLIP image/text encoder (transformers CLIPModel) producing CLS + 7x7 patch grid and EOT + words.

Following the authors' feature code, *every* vision token goes through post-layernorm and the visual
projection (transformers only does this for the pooled CLS token), and every text position goes through
the final layernorm and the text projection. Text is tokenised exactly like OpenAI CLIP, zero-padded and
run with the causal mask only (no padding mask), as `clip.encode_text` does.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel

from .clip_tokenizer import CONTEXT_LENGTH, VOCAB_SIZE, ClipTokenizer, shared_tokenizer
from .runtime import check_uint8_frames, frames_to_device, inference, precision_name, resolve_device, to_numpy
from .weights import EncoderLoadError, combined_sha256, one_line, path_problem, sha256_file, state_dict_sha256

FRAME_SIZE = 224
MAX_WORDS = 20
PATCH_SIZE = 32
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NORMALIZE_MODES = ("clip", "none")
RESIZE_MODES = ("center-crop", "squash")
TINY_SEED = 0
# Randomly initialised CLIP draws token and position embeddings at the same scale (std 0.02), so the word
# outputs of a random text tower mostly say where a word stands, not which word it is; trained CLIP's say
# which. The tiny model draws its token embeddings this much larger so that, as with the real encoder, the
# same word in different captions gives similar features (tests/encoders/test_clip.py checks it).
TINY_TOKEN_SCALE = 20.0
# A random 32x32x3 patch filter weighs every pixel independently, so a patch's features change more with where
# an object's edge falls inside the patch than with the object's colour. Trained ViT/CLIP first layers are
# smooth colour blobs and coarse gradients; the tiny model draws its patch filters from cosines of frequency
# 0..TINY_PATCH_FREQUENCY per axis (random coefficients, the same overall scale), so colours survive the patch.
TINY_PATCH_FREQUENCY = 1
_TEXT_BATCH = 256  # bounds activation memory when a caller passes thousands of captions
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class ClipLoadError(EncoderLoadError):
    """CLIP weights could not be found or do not fit the ViT-B/32 feature contract."""


def tiny_clip_config() -> CLIPConfig:
    """Real CLIP vocabulary, 77-token context and 32-px patches at 224 (7x7 grid), tiny widths."""
    text = dict(vocab_size=VOCAB_SIZE, max_position_embeddings=CONTEXT_LENGTH, hidden_size=64,
                intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
    vision = dict(image_size=FRAME_SIZE, patch_size=PATCH_SIZE, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=2)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=64)


def build_tiny_clip(seed: int = TINY_SEED) -> CLIPModel:
    """Randomly initialised tiny CLIP; the same seed gives bit-identical weights on CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(tiny_clip_config())
        with torch.no_grad():
            model.text_model.embeddings.token_embedding.weight.mul_(TINY_TOKEN_SCALE)
            patch = model.vision_model.embeddings.patch_embedding.weight
            patch.copy_(smooth_filters(patch.shape, float(patch.std())))
    return model.eval()


def smooth_filters(shape: torch.Size, std: float) -> torch.Tensor:
    """Random filters [out, channels, k, k] in the span of 2-D cosines of frequency <= TINY_PATCH_FREQUENCY
    (coefficients shrinking with frequency), rescaled to standard deviation `std`. Draws from torch's RNG."""
    out, channels, k = shape[0], shape[1], shape[-1]
    x = (torch.arange(k, dtype=torch.float32) + 0.5) / k
    waves = [torch.cos(torch.pi * f * x) for f in range(TINY_PATCH_FREQUENCY + 1)]
    basis = torch.stack([wy[:, None] * wx[None] for wy in waves for wx in waves])          # [K, k, k]
    order = torch.tensor([fy + fx for fy in range(len(waves)) for fx in range(len(waves))], dtype=torch.float32)
    coef = torch.randn(out, channels, len(basis)) / (1 + order).sqrt()
    filters = torch.einsum("ock,kyx->ocyx", coef, basis)
    return filters * (std / filters.std())


def _local_weight_files(folder: Path) -> list[Path]:
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def _hub_weight_files(repo_id: str) -> list[Path]:
    """The cached weights file of a hub model (after from_pretrained fetched it), if any."""
    from huggingface_hub import try_to_load_from_cache

    for filename in _WEIGHT_FILES:
        cached = try_to_load_from_cache(repo_id, filename)
        if isinstance(cached, str) and os.path.isfile(cached):
            return [Path(cached)]
    return []


def _weights_identity(source: str, model: CLIPModel) -> tuple[str, str]:
    """(sha256, what was hashed): the weights file(s) when we can find them, else the state_dict."""
    folder = Path(source).expanduser()
    files = _local_weight_files(folder) if folder.is_dir() else _hub_weight_files(source)
    if not files:
        return state_dict_sha256(model.state_dict()), "state_dict"
    if len(files) == 1:
        return sha256_file(files[0]), "file"
    return combined_sha256({f.name: sha256_file(f) for f in files}), "files"


def _looks_like_path(source: str) -> bool:
    """Explicit paths never fall through to a hub lookup (that would only give a confusing network error)."""
    return source.startswith((".", "/", "~")) or Path(source).expanduser().exists()


def load_clip(source: str) -> CLIPModel:
    """CLIPModel from a local save_pretrained directory or a hub id (works offline once cached)."""
    folder = Path(source).expanduser()
    local = _looks_like_path(source)
    problem = path_problem(folder, directory=True) if local else None
    if problem:
        raise ClipLoadError(
            f"CLIP model directory {source} {problem}: save one with "
            "CLIPModel.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(DIR) on a machine "
            "with internet, copy DIR here and pass it as --clip-model DIR"
        )
    try:
        model, info = CLIPModel.from_pretrained(str(folder) if local else source, dtype=torch.float32,
                                                output_loading_info=True)
    except (OSError, ValueError) as error:
        what = "" if local else " (no local directory of that name, so it was looked up as a hub id)"
        raise ClipLoadError(
            f"could not load CLIP weights from {source!r}{what}: {one_line(error)}. Without hub access, download "
            "openai/clip-vit-base-patch32 elsewhere (save_pretrained), copy the directory here and pass "
            "--clip-model DIR"
        ) from error
    # transformers would fill missing weights with random values and only log it: refuse instead.
    incomplete = sorted(info.get("missing_keys", ())) + sorted(str(k) for k in info.get("mismatched_keys", ()))
    if incomplete:
        shown = ", ".join(incomplete[:8]) + (f", ... ({len(incomplete) - 8} more)" if len(incomplete) > 8 else "")
        raise ClipLoadError(f"{source}: checkpoint lacks or mis-shapes {len(incomplete)} CLIP weights: {shown}")
    _check_architecture(model.config, source)
    return model.eval()


def _check_architecture(config: CLIPConfig, source: str) -> None:
    vision, text = config.vision_config, config.text_config
    problems = []
    if vision.image_size != FRAME_SIZE or vision.patch_size != PATCH_SIZE:
        problems.append(f"image_size/patch_size {vision.image_size}/{vision.patch_size} (need 224/32: 7x7 grid)")
    if text.vocab_size != VOCAB_SIZE or text.max_position_embeddings != CONTEXT_LENGTH:
        problems.append(f"text vocab/context {text.vocab_size}/{text.max_position_embeddings} (need 49408/77)")
    if problems:
        raise ClipLoadError(f"{source}: not a CLIP ViT-B/32-style model: " + "; ".join(problems))


def check_clip_options(normalize: str, resize: str) -> None:
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"clip_normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")


def _model_name(config: CLIPConfig) -> str:
    vision = config.vision_config
    if (vision.hidden_size, vision.num_hidden_layers, config.projection_dim) == (768, 12, 512):
        return "clip-vit-b-32"
    return f"clip-vit-p32-w{vision.hidden_size}-l{vision.num_hidden_layers}-d{config.projection_dim}"


class ClipEncoder:
    """Per-frame CLS + 7x7 patch tokens and per-caption EOT + 20 BPE word tokens, all projected."""

    name = "clip"
    frame_size = FRAME_SIZE

    def __init__(self, model: CLIPModel, *, model_name: str, weights_sha256: str, weights_hashed: str,
                 normalize: str = "clip", resize: str = "center-crop", device: str | None = None,
                 tokenizer: ClipTokenizer | None = None, source: str = ""):
        check_clip_options(normalize, resize)
        _check_architecture(model.config, source or model_name)
        self.device = resolve_device(device)
        self.precision = precision_name(self.device)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.tokenizer = tokenizer or shared_tokenizer()
        self.source = source
        self.normalize = normalize
        self.grid_size = FRAME_SIZE // PATCH_SIZE
        self.dim = int(model.config.projection_dim)
        self._mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        self.spec = {
            "encoder": "clip", "model": model_name,
            "weights_sha256": weights_sha256, "weights_hashed": weights_hashed,
            "preprocessing": {"size": FRAME_SIZE, "resize": resize, "value_range": [0, 1], "normalize": normalize},
            "grid": [self.grid_size, self.grid_size],
            "dims": {"global": self.dim, "grid": self.dim, "sentence": self.dim, "words": self.dim},
            "max_words": MAX_WORDS,
            "tokenizer": self.tokenizer.spec(),
        }

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        pixels = frames_to_device(frames, self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if self.normalize == "clip":
            pixels = (pixels - self._mean) / self._std
        return pixels

    def encode_frames(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [N,224,224,3] RGB -> {"global": [N,D] CLS, "grid": [N,7,7,D] patch tokens}, float32."""
        check_uint8_frames(frames, (FRAME_SIZE, FRAME_SIZE, 3), "clip.encode_frames")
        n, g = frames.shape[0], self.grid_size
        if n == 0:  # the ViT cannot run on an empty batch
            return {"global": np.zeros((0, self.dim), np.float32), "grid": np.zeros((0, g, g, self.dim), np.float32)}
        with inference(self.device):
            hidden = self.model.vision_model(pixel_values=self._pixels(frames)).last_hidden_state
            tokens = self.model.visual_projection(self.model.vision_model.post_layernorm(hidden))
            return {"global": to_numpy(tokens[:, 0]), "grid": to_numpy(tokens[:, 1:]).reshape(n, g, g, self.dim)}

    def token_ids(self, texts: Sequence[str]) -> np.ndarray:
        return self.tokenizer(texts)

    def encode_text(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Captions -> {"sentence": [C,D] EOT output, "words": [C,20,D] BPE positions 1..20, "mask": [C,20]}."""
        ids = self.token_ids(texts)
        parts = [self._encode_ids(ids[i : i + _TEXT_BATCH]) for i in range(0, len(ids), _TEXT_BATCH)]
        if not parts:
            return {"sentence": np.zeros((0, self.dim), np.float32),
                    "words": np.zeros((0, MAX_WORDS, self.dim), np.float32),
                    "mask": np.zeros((0, MAX_WORDS), bool)}
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _encode_ids(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        # First EOT per row; tokenisation guarantees one (truncation rewrites the last id to EOT).
        eot = (ids == self.tokenizer.eot_id).argmax(axis=1)
        # Word j (position j+1) is real when it comes before EOT: EOT and padding are masked out.
        mask = np.arange(MAX_WORDS)[None, :] < (eot[:, None] - 1)
        # The text transformer is causal, so positions after the last EOT (and after word 20) cannot change
        # any output we keep: dropping them gives identical values for typical captions ~3x faster.
        length = max(int(eot.max()) + 1, MAX_WORDS + 1)
        with inference(self.device):
            ids_t = torch.from_numpy(np.ascontiguousarray(ids[:, :length])).to(self.device)
            hidden = self.model.text_model(input_ids=ids_t).last_hidden_state
            tokens = self.model.text_projection(hidden)
            rows = torch.arange(len(ids), device=self.device)
            sentence = tokens[rows, torch.from_numpy(eot).to(self.device)]
            return {"sentence": to_numpy(sentence), "words": to_numpy(tokens[:, 1 : MAX_WORDS + 1]), "mask": mask}


def build_clip_encoder(preset: str, *, clip_model: str | None, normalize: str, resize: str,
                       device: str | None) -> ClipEncoder:
    """The CLIP encoder for a preset: 'tiny' (seeded random) or 'vit-b-32' (real weights)."""
    check_clip_options(normalize, resize)
    if preset == "tiny":
        model = build_tiny_clip()
        return ClipEncoder(model, model_name="clip-tiny", weights_sha256=state_dict_sha256(model.state_dict()),
                           weights_hashed="state_dict", normalize=normalize, resize=resize, device=device,
                           source=f"tiny-random-seed{TINY_SEED}")
    if not clip_model:
        raise ClipLoadError(
            "preset 'vit-b-32' needs --clip-model: the hub id openai/clip-vit-base-patch32 (when online or "
            "cached) or a directory written by CLIPModel.save_pretrained"
        )
    model = load_clip(clip_model)
    sha, hashed = _weights_identity(clip_model, model)
    return ClipEncoder(model, model_name=_model_name(model.config), weights_sha256=sha, weights_hashed=hashed,
                       normalize=normalize, resize=resize, device=device, source=clip_model)
