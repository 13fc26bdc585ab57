"""Whole videos' frame vectors for methods whose training items span a video (coot, wsra): a NarrationDataset
(trainer.data) that also keeps, per worker, an LRU of `data.caption_cache` videos' stored frame vectors."""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from trainer.data import NarrationDataset, NarrationIndex
from trainer.train_config import DataConfig


class VideoFramesDataset(NarrationDataset):
    """NarrationDataset with a per-worker LRU of whole videos' frame vectors."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        super().__init__(root, index, cfg)
        self._frames: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._frames_pid = -1

    def frames_of(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(times [N], global [N, D]) of every stored frame of the video (data.store_fps segments only)."""
        if self._frames_pid != os.getpid():
            self._frames, self._frames_pid = OrderedDict(), os.getpid()
        if video_id not in self._frames:
            got = self.store().frames(video_id, self.cfg.encoder, fps=self.cfg.store_fps, fields=("global",))
            self._frames[video_id] = (got["times"], got["global"])
            while len(self._frames) > max(1, self.cfg.caption_cache):
                self._frames.popitem(last=False)
        self._frames.move_to_end(video_id)
        return self._frames[video_id]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


