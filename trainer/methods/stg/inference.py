"""What evaluation asks of `stg` and `comma` (the grounding tasks gyt, gyt-spatial, youcook, mining): per-row
similarities of a video's stored features to texts, and heatmaps of chunks of rows for one text per chunk.

- similarities: cosine of the L2-normalised global video embedding f(frame) and text embedding g(sentence) (paper
  Sec. 3.5 and appendix 8.3: "we first normalize the global feature for video and text"), or, for a head without
  a global branch (comma) or with `source="local"`, the local score <mean regions, mean words> of each frame;
- heatmaps: the attention rollout (`head.rollout`) in eval-mode attention: the checkpoint's, or the paper's
  (scaled dot product, residuals) or the released code's (dot product, no residual).
`video` needs `global_`, `grid` [N rows, ...] and `times`; `texts` needs `texts`, `sentence`, `words`, `mask`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

EVAL_ATTENTION = {"paper": ("cosine", "all_but_first"), "reference": ("dot", "none")}  # CVPR Sec. 3.3; code
ROWS_PER_BATCH = 512


class HeadGrounder:
    kind = "grounding"

    def __init__(self, trained, device: torch.device, attention: str = "checkpoint", source: str = "auto", **_):
        self.device, self.head = device, trained.head.to(device).eval()
        name = trained.config.method
        if attention != "checkpoint":
            # A new modes dict on our own copy of the head: the checkpoint's settings stay in its config.
            self.head.stack.modes = {**self.head.stack.modes, "eval": EVAL_ATTENTION[attention]}
        self.attention = self.head.stack.modes["eval"]
        has_global = getattr(self.head, "has_global", False)
        source = ("global" if has_global else "local") if source == "auto" else source
        if source == "global" and not has_global:
            raise ValueError(f"method {name!r} has no global branch: use temporal.source=local")
        self.source = source
        self.similarity_kind = "cosine" if source == "global" else "dot"
        self.method = f"{name}@step{trained.step}"
        self.info = {"eval_attention": list(self.attention), "temporal_source": source}

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device).float()

    @torch.no_grad()
    def similarity(self, video, texts) -> np.ndarray:
        """[N rows, L texts] float32."""
        words, mask = self._tensor(texts.words), torch.from_numpy(texts.mask).to(self.device)
        if self.source == "global":
            grid = self._tensor(video.grid) if self.head.cfg.global_feature == "grid_mean" else None
            frames = self.head.frame_vectors(self._tensor(video.global_), grid)
            v = nn.functional.normalize(self.head.video_embedding(frames).float(), dim=-1)
            t = nn.functional.normalize(self.head.global_text(self._tensor(texts.sentence), words, mask).float(),
                                        dim=-1)
            return (v @ t.T).cpu().numpy().astype(np.float32)
        out = np.zeros((len(video.times), len(texts.texts)), np.float32)
        for lo in range(0, len(video.times), ROWS_PER_BATCH):
            grid = self._tensor(video.grid[lo:lo + ROWS_PER_BATCH])[:, None]  # each row its own 1-frame chunk
            for j in range(len(texts.texts)):
                out[lo:lo + len(grid), j] = self.head.local_scores(grid, words[j], mask[j]).cpu().numpy()
        return out

    @torch.no_grad()
    def maps(self, grid: torch.Tensor, frame_mask: torch.Tensor, texts) -> torch.Tensor:
        """grid [C, F, *cells, D] (float32 on the device), frame_mask [C, F], one text per chunk -> heatmaps
        [C, F, *cells] float32."""
        words, mask = self._tensor(texts.words), torch.from_numpy(texts.mask).to(self.device)
        return self.head.rollout(grid, words, mask, frame_mask, mode="eval")
