"""What inference asks of a method, and the two methods that answer it.

A grounder gives (1) per-row similarities of a video's stored features to a list of texts (temporal
detection) and (2) heatmaps of chunks of rows for one text per chunk (spatial grounding):

- `HeadGrounder`, a trained head (trainer.checkpoint.load_trained): cosine of the L2-normalised global video
  embedding f(frame) and text embedding g(sentence) (paper Sec. 3.5 and appendix 8.3: "we first normalize the
  global feature for video and text"), or, for heads without a global branch (CoMMA), the local score
  <mean regions, mean words> of each frame with each text; heatmaps = the attention rollout (`head.rollout`) in
  eval-mode attention chosen by `spatial.attention`.
- `FrozenGrounder`, the frozen features alone (the paper's CLIP and MIL-NCE baselines): cosine of the frame's
  global feature with the sentence feature, and per grid cell the cosine of the cell's token with the sentence
  feature. CLIP's frame, cell and sentence features share its joint space; S3D's are mapped into MIL-NCE's
  joint space by the encoder's own `fc` (video, per cell too) and `text_module.fc2` (sentence).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from eval.inference.config import InferConfig
from eval.inference.encoder import TextFeatures
from eval.inference.errors import InferenceError
from eval.inference.features import VideoFeatures
from pipeline.encoders import Encoder
from trainer.checkpoint import TrainedHead

EVAL_ATTENTION = {"paper": ("scaled_dot", "all_but_first"), "reference": ("dot", "none")}
_ROWS_PER_BATCH = 512


class Grounder(Protocol):
    method: str
    similarity_kind: str  # "cosine" (in [-1, 1]) or "dot" (unbounded)

    def similarity(self, video: VideoFeatures, texts: TextFeatures) -> np.ndarray:
        """[N rows, L texts] float32."""

    def maps(self, grid: torch.Tensor, frame_mask: torch.Tensor, texts: TextFeatures) -> torch.Tensor:
        """grid [C, F, *cells, D] (float32 on the device), frame_mask [C, F], one text per chunk ->
        heatmaps [C, F, *cells] float32."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(x.float(), dim=-1)


class HeadGrounder:
    def __init__(self, trained: TrainedHead, cfg: InferConfig):
        self.device = resolve_device(cfg.device)
        missing = [m for m in ("rollout", "local_scores", "stack") if not hasattr(trained.head, m)]
        if missing:
            raise InferenceError(f"head {trained.config.head.name!r} has no {', '.join(missing)}: grounding "
                                 "inference needs an attention-rollout head (stg, comma)")
        self.head = trained.head.to(self.device).eval()
        if cfg.spatial.attention != "checkpoint":
            # A new modes dict on our own copy of the head: the checkpoint's settings stay in its config.
            self.head.stack.modes = {**self.head.stack.modes, "eval": EVAL_ATTENTION[cfg.spatial.attention]}
        self.attention = self.head.stack.modes["eval"]
        source = cfg.temporal.source
        if source == "auto":
            source = "global" if getattr(self.head, "has_global", False) else "local"
        if source == "global" and not getattr(self.head, "has_global", False):
            raise InferenceError(f"head {trained.config.head.name!r} has no global branch: use temporal.source=local")
        self.source = source
        self.similarity_kind = "cosine" if source == "global" else "dot"
        self.method = f"{trained.config.head.name}@step{trained.step}"

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device).float()

    @torch.no_grad()
    def similarity(self, video: VideoFeatures, texts: TextFeatures) -> np.ndarray:
        words, mask = self._tensor(texts.words), torch.from_numpy(texts.mask).to(self.device)
        if self.source == "global":
            v = _unit(self.head.video_embedding(self._tensor(video.global_)))
            t = _unit(self.head.global_text(self._tensor(texts.sentence), words, mask))
            return (v @ t.T).cpu().numpy().astype(np.float32)
        out = np.zeros((len(video.times), len(texts.texts)), np.float32)
        for lo in range(0, len(video.times), _ROWS_PER_BATCH):
            grid = self._tensor(video.grid[lo:lo + _ROWS_PER_BATCH])[:, None]  # each row its own 1-frame chunk
            for j in range(len(texts.texts)):
                out[lo:lo + len(grid), j] = self.head.local_scores(grid, words[j], mask[j]).cpu().numpy()
        return out

    @torch.no_grad()
    def maps(self, grid: torch.Tensor, frame_mask: torch.Tensor, texts: TextFeatures) -> torch.Tensor:
        words, mask = self._tensor(texts.words), torch.from_numpy(texts.mask).to(self.device)
        return self.head.rollout(grid, words, mask, frame_mask, mode="eval")


class FrozenGrounder:
    def __init__(self, encoder: Encoder, cfg: InferConfig):
        self.device = resolve_device(cfg.device)
        self.similarity_kind = "cosine"
        self.method = f"global-sim:{encoder.spec['model']}"
        self.project_video, self.project_text = self._projections(encoder)

    def _projections(self, encoder: Encoder) -> tuple[Callable, Callable]:
        dims = encoder.spec["dims"]
        if encoder.spec["encoder"] == "s3d":  # MIL-NCE's joint space
            model = encoder.model
            fc, fc2 = model.fc.to(self.device).float(), model.text_module.fc2.to(self.device).float()
            return fc, fc2
        if dims["global"] != dims["sentence"] or dims["grid"] != dims["sentence"]:
            raise InferenceError(f"frozen features of widths {dims} share no space for cosine similarity")
        return nn.Identity(), nn.Identity()

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device).float()

    @torch.no_grad()
    def similarity(self, video: VideoFeatures, texts: TextFeatures) -> np.ndarray:
        v = _unit(self.project_video(self._tensor(video.global_)))
        t = _unit(self.project_text(self._tensor(texts.sentence)))
        return (v @ t.T).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def maps(self, grid: torch.Tensor, frame_mask: torch.Tensor, texts: TextFeatures) -> torch.Tensor:
        t = _unit(self.project_text(self._tensor(texts.sentence)))           # [C, d]
        v = _unit(self.project_video(grid))                                  # [C, F, *cells, d]
        shape = v.shape[:-1]
        cos = torch.einsum("cnd,cd->cn", v.reshape(shape[0], -1, v.shape[-1]), t)
        return cos.reshape(shape).float()
