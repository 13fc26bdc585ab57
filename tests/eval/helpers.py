"""Helpers of the end-to-end tests: the command lines in-process, and oracle heatmaps."""
import json

import numpy as np

from eval import baselines, score
from eval.predictions import PredictionsMeta, PredictionsWriter, read_predictions
from eval.metrics.heatmaps import first_argmax, upsample


def score_fails(capsys, *argv) -> str:
    """`eval.score argv` must exit 2 with one `error:` line on stderr; that line."""
    assert score.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def run_score(capsys, *args) -> dict:
    """`python -m eval.score ...` in-process; returns the JSON object of the last stdout line."""
    assert score.main([str(a) for a in args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def run_baseline(*args) -> None:
    assert baselines.main([str(a) for a in args]) == 0


class CellPoints:
    """Where the one-hot map of each 7x7 cell points after upsampling, to build oracle heatmaps."""

    def __init__(self):
        self._cache = {}

    def table(self, size):
        if size not in self._cache:
            maps = np.zeros((49, 7, 7), np.float32)
            maps[np.arange(49), np.arange(49) // 7, np.arange(49) % 7] = 1.0
            self._cache[size] = first_argmax(upsample(maps, size))
        return self._cache[size]

    def heatmap_inside(self, box, size):
        """A one-hot heatmap whose point lies in the box (inclusive), or None when no cell's point does."""
        pts = self.table(size)
        x1, y1, x2, y2 = box
        inside = np.flatnonzero((pts[:, 0] >= x1) & (pts[:, 0] <= x2) & (pts[:, 1] >= y1) & (pts[:, 1] <= y2))
        if not len(inside):
            return None
        heatmap = np.zeros((7, 7), np.float32)
        heatmap[inside[0] // 7, inside[0] % 7] = 1.0
        return heatmap


def mining_file(path, per_video):
    with PredictionsWriter(path, PredictionsMeta("mining", "test")) as w:
        for vid, (labels, pool) in per_video.items():
            scores = np.zeros((len(labels), len(pool)), np.float32)
            scores[np.arange(len(labels)), [pool.index(label) for label in labels]] = 50.0
            w.add_temporal(vid, pool, scores)
    return read_predictions(path)
