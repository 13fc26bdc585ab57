"""Validation of the items of a predictions file (eval/predictions.py documents the layout), shared by its
writer and reader and by eval/predictions_ranked.py: every error names the file, the group and the problem."""
from __future__ import annotations

import os

import numpy as np

BACKGROUND = "background"


class PredictionsError(ValueError):
    """A predictions file (or data about to be written to one) breaks the documented layout."""

    def __init__(self, path: str | os.PathLike, where: str, problem: str):
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{self.path}: {where}: {problem}")


def check_name(path, where: str, name: str) -> str:
    name = str(name)
    if not name or "/" in name or name in (".", ".."):
        raise PredictionsError(path, where, f"invalid HDF5 group name {name!r} (empty, '.', '..' or contains '/')")
    return name


def finite_float32(path, where: str, array, rank: int, last: tuple[int, ...] = ()) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != rank:
        raise PredictionsError(path, where, f"expected rank {rank}, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise PredictionsError(path, where, f"expected a numeric array, got dtype {array.dtype}")
    if last and array.shape[-len(last):] != last:
        raise PredictionsError(path, where, f"expected trailing shape {last}, got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise PredictionsError(path, where, f"{bad} value(s) are NaN or infinite")
    return array


def heatmaps_array(path, where: str, array) -> np.ndarray:
    """Heatmaps [n, gh, gw], finite, with at least one cell (an empty map has no point to upsample)."""
    array = finite_float32(path, where, array, 3)
    if min(array.shape[1:]) < 1:
        raise PredictionsError(path, where, f"heatmaps of shape {array.shape} have no cells (need gh, gw >= 1)")
    return array


def check_span(path, where: str, start, end, n: int | None) -> tuple[int, int]:
    if isinstance(start, bool) or isinstance(end, bool) or not all(
            isinstance(v, (int, np.integer)) for v in (start, end)):
        raise PredictionsError(path, where, f"start/end must be integers, got {start!r}, {end!r}")
    start, end = int(start), int(end)
    if start < 0 or end < start:
        raise PredictionsError(path, where, f"need 0 <= start <= end, got start={start}, end={end}")
    if n is not None and n != end - start + 1:
        raise PredictionsError(path, where, f"{n} rows for seconds {start}..{end} (need end - start + 1 = "
                                            f"{end - start + 1})")
    return start, end


def check_labels(path, where: str, labels, n_columns: int) -> tuple[str, ...]:
    labels = tuple(str(v) for v in labels)
    if len(labels) != n_columns:
        raise PredictionsError(path, where, f"{len(labels)} labels for {n_columns} score columns")
    if len(set(labels)) != len(labels):
        raise PredictionsError(path, where, f"duplicate labels {sorted({l for l in labels if labels.count(l) > 1})}")
    if BACKGROUND not in labels:
        raise PredictionsError(path, where, f"labels must include {BACKGROUND!r}")
    return labels
