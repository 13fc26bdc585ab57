"""WSRA's training items (`WsraDataset`): one item per narration: its query (sentence, words) and its video's
untrimmed snippets: stored frame vectors mean-pooled over wsra.data.snippet_s seconds, merged into
wsra.data.video_frames equal groups when there are more.
"""
from __future__ import annotations

import os

import numpy as np

from trainer.data import NarrationIndex
from trainer.methods.wsra.config import WsraDataConfig
from trainer.train_config import DataConfig
from trainer.video_frames import VideoFramesDataset


def snippets(times: np.ndarray, feats: np.ndarray, snippet_s: float, max_n: int = 0) -> tuple[np.ndarray, ...]:
    """(start [n], end [n], mean feature [n, D]) of the snippets [k s, (k + 1) s) that hold frames; with max_n > 0
    and more snippets than that, consecutive snippets are merged into max_n equal groups (mean of their means)."""
    if len(times) == 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, feats.shape[-1]), np.float32)
    bins = np.floor(np.asarray(times, np.float64) / snippet_s + 1e-9).astype(np.int64)
    keys, first = np.unique(bins, return_index=True)
    sums = np.add.reduceat(feats.astype(np.float32), first, axis=0)
    means = sums / np.diff(np.append(first, len(bins)))[:, None]
    starts, ends = keys * snippet_s, (keys + 1) * snippet_s
    if max_n and len(keys) > max_n:
        groups = np.array_split(np.arange(len(keys)), max_n)
        means = np.stack([means[g].mean(0) for g in groups])
        starts, ends = np.array([starts[g[0]] for g in groups]), np.array([ends[g[-1]] for g in groups])
    return starts, ends, means


class WsraDataset(VideoFramesDataset):
    """Query items for the WSRA head (module docstring)."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig, wsra: WsraDataConfig):
        super().__init__(root, index, cfg)
        self.wsra = wsra
        self._snippets: dict[str, np.ndarray] = {}

    def video_snippets(self, video_id: str) -> np.ndarray:
        """Snippet features [n, D] of the whole video (computed once per worker and video)."""
        times, feats = self.frames_of(video_id)
        key = f"{os.getpid()}:{video_id}"
        if key not in self._snippets:
            if len(self._snippets) >= max(1, self.cfg.caption_cache):
                self._snippets.pop(next(iter(self._snippets)))
            self._snippets[key] = snippets(times, feats, self.wsra.snippet_s, self.wsra.video_frames)[2]
        return self._snippets[key]

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        spec, n = self.store().encoders[self.cfg.encoder], len(indices)
        d, w, t = spec["dims"], spec["max_words"], self.wsra.video_frames
        out = {"snippets": np.zeros((n, t, d["global"]), np.float16), "snippet_mask": np.zeros((n, t), bool),
               "words": np.zeros((n, w, d["words"]), np.float16), "word_mask": np.zeros((n, w), bool),
               "sentence": np.zeros((n, d["sentence"]), np.float16), "video": np.zeros(n, np.int64),
               "index": np.zeros(n, np.int64)}
        for b, i in enumerate(indices):
            v, k = self.locate(int(i))
            video_id, caps, nar = self.video(v)
            j, _ = self._with_words(k, caps, nar)
            row = nar.row[j]
            feats = self.video_snippets(video_id)
            out["snippets"][b, :len(feats)], out["snippet_mask"][b, :len(feats)] = feats, True
            out["words"][b], out["word_mask"][b] = caps["words"][row], caps["mask"][row]
            out["sentence"][b], out["video"][b] = caps["sentence"][row], v
            out["index"][b] = int(self.index.first[v]) + j
        return out
