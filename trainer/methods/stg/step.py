"""One training step's computation: frame selection -> head -> scores gathered over ranks -> loss terms.

`GroundingModel` is what DistributedDataParallel wraps (DDP must see the whole forward). The local loss runs
over groups of `loss.local_group` consecutive samples of the global batch (0: the whole batch): each rank
computes the pairs of its own videos with every text of their group (texts are gathered), the pair scores
are gathered, and every rank evaluates the same loss (see trainer.distributed for why that is exact).
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.config import ConfigError
from trainer.distributed import World, gather
from trainer.losses import contrastive, matrix_scores, pair_scores, reduce_groups, word_level
from trainer.methods.stg.selection import FrameSelector, Selection
from trainer.train_config import TrainConfig


def take_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, U, ...] at candidate indices [B, T] -> [B, T, ...]."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], index]


class GroundingModel(nn.Module):
    def __init__(self, head: nn.Module, cfg: TrainConfig, world: World | None = None):
        super().__init__()
        self.head, self.cfg, self.world = head, cfg.section, world or World()  # cfg: the method's section
        self.selector = FrameSelector(self.cfg.selection)
        loss = self.cfg.loss
        if loss.global_weight > 0 and not getattr(head, "has_global", False):
            raise ConfigError(f"method {cfg.method!r} has no global branch: set {cfg.method}.loss.global_weight=0")
        if loss.local_weight <= 0 and loss.word_weight <= 0 and loss.global_weight <= 0:
            raise ConfigError("every loss weight is 0: nothing to train")
        self._check_selection()
        # a branch without a loss term (or the value MLP without the word-level term) gets no gradient
        self.unused_parameters = min(loss.global_weight, loss.local_weight) <= 0 or (
            self.cfg.head.word_values and loss.word_weight <= 0)

    def _check_selection(self) -> None:
        """Refuse at start-up a selection the features cannot support (rather than at the first batch)."""
        sel, dims = self.cfg.selection, self.head.dims
        if sel.method in ("none", "random"):
            return
        if sel.space == "projected":
            try:
                self.head.selection_projections()
            except ValueError as exc:
                raise ConfigError(f"selection.space=projected: {exc}") from exc
            return
        videos = {"frames": [dims["global"]], "regions": [dims["grid"]], "both": [dims["global"], dims["grid"]]}
        text = dims["words"] if sel.text == "words" else dims["sentence"]
        for video in videos[sel.video]:
            if video != text:
                raise ConfigError(f"selection.space=raw compares {video}-d video with {text}-d text features: use "
                                  f"selection.space=projected for this encoder")

    def select(self, batch: dict[str, torch.Tensor]) -> Selection:
        sel = self.cfg.selection
        projections = self.head.selection_projections() if sel.method in ("sinkhorn", "topk") and \
            sel.space == "projected" \
            else (None, None)
        return self.selector(batch, *projections)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms of the batch: {"loss": weighted total, "global", "local", "word" (those in use)}."""
        cfg = self.cfg.loss
        if self.cfg.head.global_feature == "grid_mean":  # Table 13: the frame vector is the mean of its grid
            batch = {**batch, "global": self.head.frame_vectors(batch["global"], batch["grid"])}
        sel = self.select(batch)
        video, video_mask = self.head.encode_video(take_frames(batch["grid"], sel.index), sel.mask)
        text = self.head.encode_text(batch["words"])
        terms: dict[str, torch.Tensor] = {}
        if cfg.local_weight > 0 or cfg.word_weight > 0:
            terms.update(self._local(video, video_mask, text, batch["word_mask"]))
        if cfg.global_weight > 0:
            terms["global"] = self._global(batch, sel)
        weights = {"global": cfg.global_weight, "local": cfg.local_weight, "word": cfg.word_weight}
        total = sum(weights[k] * v for k, v in terms.items())
        return {"loss": total, **terms}

    def _global(self, batch: dict[str, torch.Tensor], sel: Selection) -> torch.Tensor:
        cfg, head = self.cfg, self.head
        if cfg.head.global_frames == "all":
            frames, mask = batch["global"], batch["frame_mask"]
        else:
            frames, mask = take_frames(batch["global"], sel.index), sel.mask
        video = gather(head.global_video(frames, mask), self.world)
        text = gather(head.global_text(batch["sentence"], batch["words"], batch["word_mask"]), self.world)
        scores = matrix_scores(video, text, cfg.loss.normalize, cfg.loss.temperature)
        return contrastive(scores, cfg.loss.form, cfg.loss.margin)

    def _local(self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor,
               word_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, world = self.cfg.loss, self.world
        n_local = video.shape[0]
        texts, text_masks = gather(text, world), gather(word_mask, world)
        size = cfg.local_group or texts.shape[0]
        want_words = cfg.word_weight > 0
        rows, word_rows = [], []
        for first, stop, group in self._runs(n_local, size):
            t, tm = texts[group * size:(group + 1) * size], text_masks[group * size:(group + 1) * size]
            out = self.head.pairs(video[first:stop], video_mask[first:stop], t, tm, keep_words=want_words)
            if cfg.local_weight > 0:
                rows.append(pair_scores(out.video, out.text, cfg.normalize, cfg.temperature))       # [n, g]
            if want_words:
                values = self.head.values(t)[None]                                                  # [1, g, W, d]
                word_rows.append(pair_scores(out.words, values, cfg.normalize, cfg.temperature))    # [n, g, W]
        n_groups = texts.shape[0] // size
        terms = {}
        if rows:
            scores = gather(torch.cat(rows), world).reshape(n_groups, size, size)
            terms["local"] = reduce_groups(contrastive(scores, cfg.form, cfg.margin), cfg.group_reduce)
        if word_rows:
            scores = gather(torch.cat(word_rows), world).reshape(n_groups, size, size, -1)
            masks = text_masks.reshape(n_groups, size, -1)
            terms["word"] = reduce_groups(word_level(scores, masks, cfg.margin), cfg.group_reduce)
        return terms

    def _runs(self, n_local: int, size: int) -> list[tuple[int, int, int]]:
        """(first, stop, group) runs of this rank's samples that share a local-loss group."""
        offset, runs, first = self.world.rank * n_local, [], 0
        while first < n_local:
            group = (offset + first) // size
            stop = min(n_local, (group + 1) * size - offset)
            runs.append((first, stop, group))
            first = stop
        return runs
