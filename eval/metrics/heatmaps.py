"""Heatmaps at model resolution -> per-frame pointing and region statistics at the frame size.

Upsampling is bilinear with align_corners=False in float32, computed by torch's own kernel with the published
scripts' exact call: `F.interpolate` in mode 'trilinear' over (time, 7, 7) with the time axis unchanged. Its
border plateaus are flat only with torch's rounding, so a numpy port moves the argmax in ~3 % of GYT frames.
The 4-D 'bilinear' call gives identical bits at 640x480, 480x640 and 640x360 but not at every size (e.g.
33x17), hence the trilinear call. The point is the first maximum in row-major order (y, then x), as
`np.unravel_index(map.argmax(), (H, W))` in the scripts.

A region mask is `map >= threshold` on raw values, or `map >= threshold * max(map)` when normalised by the
per-frame maximum (a map whose maximum is <= 0 then has an empty mask).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Pixels upsampled at once (32 maps at 640x480): bounds memory to ~ this * 10 bytes (map, mask, integral
# image) whatever the frame size; at least one map.
_PIXELS = 32 * 640 * 480


@dataclass(frozen=True)
class MaskRule:
    threshold: float
    normalise: bool  # compare with threshold * per-frame maximum instead of the raw threshold


@dataclass(frozen=True)
class HeatmapStats:
    points: np.ndarray  # int64 [n, 2] (x, y) of the first maximum
    mask_area: np.ndarray  # int64 [n] pixels in the mask (0 when no mask rule was given)
    inter: np.ndarray  # int64 [n] pixels of the mask inside the frame's box ranges


def upsample(heatmaps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[n, gh, gw] -> float32 [n, H, W] for a (W, H) frame, by torch's kernel on the CPU (the scripts' call;
    each output frame depends on its own input frame only)."""
    width, height = size
    maps = torch.from_numpy(np.ascontiguousarray(heatmaps, dtype=np.float32))[None, None]
    with torch.no_grad():
        out = F.interpolate(maps, size=(maps.shape[2], height, width), mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def first_argmax(maps: np.ndarray) -> np.ndarray:
    """[n, H, W] -> int64 [n, 2] (x, y) of the first maximum in row-major order."""
    n, height, width = maps.shape
    flat = np.argmax(maps.reshape(n, -1), axis=1)  # numpy returns the first occurrence
    return np.stack([flat % width, flat // width], axis=1).astype(np.int64)


def masks(maps: np.ndarray, rule: MaskRule) -> np.ndarray:
    """[n, H, W] -> bool [n, H, W] region masks."""
    if not rule.normalise:
        return maps >= rule.threshold
    peak = maps.reshape(len(maps), -1).max(axis=1)
    cut = np.where(peak > 0, np.float32(rule.threshold) * peak, np.inf).astype(np.float32)
    return maps >= cut[:, None, None]


def box_sums(integral: np.ndarray, which: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Sum of mask `which[i]` over the inclusive pixel range `ranges[i]`, from integral images [c, H+1, W+1]."""
    x0, x1, y0, y1 = (ranges[:, k] for k in range(4))
    empty = (x1 < x0) | (y1 < y0)
    x0, y0 = np.where(empty, 0, x0), np.where(empty, 0, y0)
    x1, y1 = np.where(empty, -1, x1), np.where(empty, -1, y1)
    s = (integral[which, y1 + 1, x1 + 1] - integral[which, y0, x1 + 1]
         - integral[which, y1 + 1, x0] + integral[which, y0, x0])
    return np.where(empty, 0, s).astype(np.int64)


def heatmap_stats(heatmaps: np.ndarray, size: tuple[int, int], ranges: np.ndarray | None = None,
                  rule: MaskRule | None = None) -> HeatmapStats:
    """Pointing and mask/box overlap for n heatmaps [n, gh, gw] on (W, H) frames.

    `ranges` [n, 4] are the frames' box pixel ranges (see `boxes.pixel_ranges`); with a `rule`, the mask area
    and its intersection with the ranges are counted. Identical heatmaps (priors, oracles) are upsampled once;
    the result is the same as upsampling every frame.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n = len(heatmaps)
    points = np.zeros((n, 2), np.int64)
    mask_area, inter = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if n == 0:
        return HeatmapStats(points, mask_area, inter)
    unique, inverse = np.unique(heatmaps.reshape(n, -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    unique = unique.reshape(len(unique), *heatmaps.shape[1:])
    order = np.argsort(inverse, kind="stable")
    chunk = max(1, _PIXELS // (size[0] * size[1]))
    bounds = np.searchsorted(inverse[order], np.arange(0, len(unique) + chunk, chunk))
    for c, lo in enumerate(range(0, len(unique), chunk)):
        maps = upsample(unique[lo:lo + chunk], size)
        frames = order[bounds[c]:bounds[c + 1]]
        local = inverse[frames] - lo
        points[frames] = first_argmax(maps)[local]
        if rule is None:
            continue
        region = masks(maps, rule)
        mask_area[frames] = region.reshape(len(region), -1).sum(axis=1)[local]
        if ranges is not None:
            integral = np.zeros((len(region), size[1] + 1, size[0] + 1), np.int32)
            integral[:, 1:, 1:] = region.cumsum(axis=1, dtype=np.int32).cumsum(axis=2, dtype=np.int32)
            inter[frames] = box_sums(integral, local, np.asarray(ranges)[frames])
    return HeatmapStats(points, mask_area, inter)
