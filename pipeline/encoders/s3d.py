"""Frozen S3D-G (MIL-NCE HowTo100M) encoder: mixed_5c grid + its mean per window, word2vec words per caption.

Video windows are [0,1] RGB with no mean/std (what MIL-NCE was trained on). Captions give fc1+ReLU word
tokens (2048-d) and a sentence vector that is, by default, the max over all `max_words` positions
*including padding*, exactly as MIL-NCE pools; `sentence_pool="max-masked"` pools real words only
(zeros for a caption with no in-vocabulary word).
"""
from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.decode import MAX_SAMPLE_FPS

from .clip_tokenizer import shared_tokenizer
from .runtime import check_uint8_frames, frames_to_device, inference, precision_name, resolve_device, to_numpy
from .s3d_model import S3DG, S3DConfig
from .s3d_text import WordTokenizer, whole_words
from .weights import EncoderLoadError, one_line, path_problem, sha256_file, state_dict_sha256

FRAME_SIZE = 224
MAX_WORDS = 20
SENTENCE_POOLS = ("max", "max-masked")
TINY_SEED = 0
TINY_WIDTH_DIVISOR = 8
TINY_WORD_DIM = 32
_DOWNLOAD_HINT = (
    "download s3d_howto100m.pth and s3d_dict.npy (MIL-NCE HowTo100M release; the original INRIA links are "
    "dead, github.com/antoine77340/S3D_HowTo100M issue #14 lists mirrors) and pass them with "
    "--s3d-weights PATH --s3d-dict PATH"
)
_NOT_IN_OLD_CHECKPOINTS = "num_batches_tracked"  # BN counters, unused in eval; absent from pre-0.4.1 saves


class S3DLoadError(EncoderLoadError):
    """The S3D checkpoint is missing, unreadable, or does not match the S3D-G state_dict layout."""


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights-only torch.load of `s3d_howto100m.pth` (no arbitrary unpickling)."""
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise S3DLoadError(f"S3D weights {path} {problem}: {_DOWNLOAD_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise S3DLoadError(f"{path}: not a readable weights-only torch checkpoint ({one_line(error)})") from error
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise S3DLoadError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(state).__name__}")
    return dict(state)


def config_from_state_dict(state: Mapping[str, torch.Tensor], path: str | Path) -> S3DConfig:
    table = state.get("text_module.word_embd.weight")
    if table is None or table.ndim != 2:
        raise S3DLoadError(f"{path}: no 2-D 'text_module.word_embd.weight': not an S3D HowTo100M checkpoint")
    return S3DConfig(num_embeddings=int(table.shape[0]), word_dim=int(table.shape[1]))


def _listing(keys: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def check_state_dict(model: S3DG, state: Mapping[str, torch.Tensor], path: str | Path) -> dict[str, torch.Tensor]:
    """Strict key/shape check with a readable error; returns the state with BN counters filled if absent."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_NOT_IN_OLD_CHECKPOINTS)]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        problems = [f"{label} ({len(keys)}): {_listing(keys)}" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)) if keys]
        hint = " (keys start with 'module.': strip the DataParallel prefix)" if any(
            k.startswith("module.") for k in unexpected) else ""
        raise S3DLoadError(f"{path}: does not match the S3D-G layout; " + "; ".join(problems) + hint)
    filled = dict(state)
    for key, value in expected.items():
        filled.setdefault(key, torch.zeros_like(value))
    return filled


def load_full_s3d(weights: str | Path) -> S3DG:
    state = load_checkpoint(weights)
    model = S3DG(config_from_state_dict(state, weights))
    model.load_state_dict(check_state_dict(model, state, weights), strict=True)
    return model.eval()


def build_tiny_s3d(num_embeddings: int, seed: int = TINY_SEED) -> S3DG:
    config = S3DConfig(width_divisor=TINY_WIDTH_DIVISOR, num_embeddings=num_embeddings, word_dim=TINY_WORD_DIM)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = S3DG(config)
    return model.eval()


class S3dEncoder:
    """Per-window mixed_5c grid [T/8,7,7,C] and mean; per-caption word tokens, mask and pooled sentence."""

    name = "s3d"
    frame_size = FRAME_SIZE

    def __init__(self, model: S3DG, tokenizer: WordTokenizer, *, model_name: str, weights_sha256: str,
                 weights_hashed: str, fps: float = 16.0, window: int = 32, resize: str = "center-crop",
                 sentence_pool: str = "max", device: str | None = None, source: str = ""):
        _check_options(fps, window, resize, sentence_pool)
        if tokenizer.vocab_rows > model.config.num_embeddings:
            raise ValueError(f"S3D dictionary has {tokenizer.vocab_rows - 1} words but the word table only "
                             f"{model.config.num_embeddings - 1} rows after padding: dictionary and weights differ")
        self.device = resolve_device(device)
        self.precision = precision_name(self.device)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.tokenizer = tokenizer
        self.window, self.fps, self.sentence_pool, self.source = window, float(fps), sentence_pool, source
        self.dim = model.output_dim
        self.word_dim = model.text_module.fc1.out_features
        self.spec = {
            "encoder": "s3d", "model": model_name,
            "weights_sha256": weights_sha256, "weights_hashed": weights_hashed,
            "preprocessing": {"size": FRAME_SIZE, "resize": resize, "value_range": [0, 1], "normalize": "none"},
            "grid": [window // 8, FRAME_SIZE // 32, FRAME_SIZE // 32],
            "dims": {"global": self.dim, "grid": self.dim, "sentence": self.word_dim, "words": self.word_dim},
            "max_words": tokenizer.max_words, "tokenizer": tokenizer.spec(),
            "sentence_pool": sentence_pool, "fps": self.fps, "window": window,
        }

    def encode_windows(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [W,T,224,224,3] (T = window) -> {"global": [W,C], "grid": [W,T/8,7,7,C]}, float32."""
        check_uint8_frames(frames, (self.window, FRAME_SIZE, FRAME_SIZE, 3), "s3d.encode_windows")
        if frames.shape[0] == 0:
            t, g = self.spec["grid"][0], self.spec["grid"][1]
            return {"global": np.zeros((0, self.dim), np.float32), "grid": np.zeros((0, t, g, g, self.dim), np.float32)}
        with inference(self.device):
            video = frames_to_device(frames, self.device).permute(0, 4, 1, 2, 3).float().div_(255.0)
            grid = self.model.mixed_5c_features(video).permute(0, 2, 3, 4, 1).float()
            return {"global": to_numpy(grid.mean(dim=(1, 2, 3))), "grid": to_numpy(grid)}

    def encode_text(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Captions -> {"sentence": [C,2048], "words": [C,20,2048] relu(fc1(word2vec)), "mask": [C,20]}."""
        ids, mask = self.tokenizer(texts)
        with inference(self.device):
            words = self.model.text_module.word_tokens(torch.from_numpy(ids).to(self.device)).float()
            if self.sentence_pool == "max-masked":
                # Words are >= 0 after ReLU, so zeroing padding equals a masked max, and gives 0 for no words.
                pooled = words * torch.from_numpy(mask).to(self.device)[..., None]
            else:
                pooled = words
            return {"sentence": to_numpy(pooled.amax(dim=1)), "words": to_numpy(words), "mask": mask}


def _check_options(fps: float, window: int, resize: str, sentence_pool: str) -> None:
    if not 0 < fps <= MAX_SAMPLE_FPS:
        raise ValueError(f"s3d_fps must be in (0, {MAX_SAMPLE_FPS:g}] frames/s (MIL-NCE used 16), got {fps}")
    if window <= 0 or window % 8:
        raise ValueError(f"s3d_window must be a positive multiple of 8 (mixed_5c has T/8 steps), got {window}")
    if resize not in ("center-crop", "squash"):
        raise ValueError(f"resize must be 'center-crop' or 'squash', got {resize!r}")
    if sentence_pool not in SENTENCE_POOLS:
        raise ValueError(f"s3d sentence_pool must be one of {SENTENCE_POOLS}, got {sentence_pool!r}")


def build_s3d_encoder(preset: str, *, weights: str | None, dictionary: str | None, fps: float, window: int,
                      resize: str, lowercase: bool, sentence_pool: str, device: str | None) -> S3dEncoder:
    """The S3D encoder for a preset: 'tiny' (seeded random, CLIP whole words as dictionary) or 'vit-b-32'."""
    _check_options(fps, window, resize, sentence_pool)
    options = dict(fps=fps, window=window, resize=resize, sentence_pool=sentence_pool, device=device)
    if preset == "tiny":
        clip_bpe = shared_tokenizer()
        tokenizer = WordTokenizer(whole_words(clip_bpe.vocab), max_words=MAX_WORDS, lowercase=lowercase,
                                  source_sha256=clip_bpe.sha256, source="clip-bpe-whole-words")
        model = build_tiny_s3d(tokenizer.vocab_rows)
        return S3dEncoder(model, tokenizer, model_name="s3dg-tiny", weights_sha256=state_dict_sha256(
            model.state_dict()), weights_hashed="state_dict", source=f"tiny-random-seed{TINY_SEED}", **options)
    if not weights or not dictionary:
        missing = [flag for flag, value in (("--s3d-weights", weights), ("--s3d-dict", dictionary)) if not value]
        raise S3DLoadError(f"preset {preset!r} needs {' and '.join(missing)}: {_DOWNLOAD_HINT}")
    problems = [f"{what} {path} {problem}" for what, path in (("S3D weights", weights), ("S3D dictionary", dictionary))
                if (problem := path_problem(path))]
    if problems:  # both paths are checked before the slow loads, so one run reports every bad path
        raise S3DLoadError(f"{'; '.join(problems)}: {_DOWNLOAD_HINT}")
    tokenizer = WordTokenizer.from_file(dictionary, max_words=MAX_WORDS, lowercase=lowercase)
    model = load_full_s3d(weights)
    return S3dEncoder(model, tokenizer, model_name="s3dg-howto100m", weights_sha256=sha256_file(weights),
                      weights_hashed="file", source=str(weights), **options)
