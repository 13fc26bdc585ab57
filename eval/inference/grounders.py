"""What the grounding tasks (gyt, gyt-spatial, youcook, mining) ask of a method, and the frozen features' answer.

A grounding adapter (`kind = "grounding"`) gives (1) per-row similarities of a video's stored features to a
list of texts (temporal detection) and (2) heatmaps of chunks of rows for one text per chunk (spatial
grounding). Trained heads give theirs in their method folder (trainer/methods/<name>/inference.py);
`FrozenGrounder` is the frozen features alone (the paper's CLIP and MIL-NCE baselines): cosine of the frame's
global feature with the sentence feature, and per grid cell the cosine of the cell's token with the sentence
feature. CLIP's frame, cell and sentence features share its joint space; S3D's are mapped into MIL-NCE's joint
space by the encoder's own `fc` (video, per cell too) and `text_module.fc2` (sentence).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from eval.inference.encoder import TextFeatures
from eval.inference.errors import InferenceError
from eval.inference.features import VideoFeatures
from pipeline.encoders import Encoder


class Grounder(Protocol):
    kind: str             # "grounding"
    method: str           # written into the predictions file
    similarity_kind: str  # "cosine" (in [-1, 1]) or "dot" (unbounded)
    info: dict            # settings for the predictions' metadata

    def similarity(self, video: VideoFeatures, texts: TextFeatures) -> np.ndarray:
        """[N rows, L texts] float32."""

    def maps(self, grid: torch.Tensor, frame_mask: torch.Tensor, texts: TextFeatures) -> torch.Tensor:
        """grid [C, F, *cells, D] (float32 on the device), frame_mask [C, F], one text per chunk ->
        heatmaps [C, F, *cells] float32."""


def _unit(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(x.float(), dim=-1)


class FrozenGrounder:
    kind = "grounding"

    def __init__(self, encoder: Encoder, device: torch.device):
        self.device = device
        self.similarity_kind = "cosine"
        self.method = f"global-sim:{encoder.spec['model']}"
        self.info: dict = {}
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
