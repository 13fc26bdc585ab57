"""Boxes as pixel sets, pointing hits, region IoU and the expectations of a uniformly random prediction.

A box (x1, y1, x2, y2) is in pixel coordinates of the frame. The pointing test is inclusive on the raw box,
x1 <= x <= x2 and y1 <= y <= y2, as in every published script. For region overlap a box becomes a set of
whole pixels, clipped to the frame, given as inclusive index ranges (x0, x1, y0, y1) (empty when x1 < x0 or
y1 < y0):
- "inclusive" (paper protocol): the pixels that pass the pointing test, x in [ceil(x1), floor(x2)].
- "reference" (the published GYT script): x in [int(x1) + 1, int(x2) + 1] (shifted one pixel right, its
  `i > xtl and i <= xbr + 1` loop) and y in [int(y1), int(y2)]; int() truncates toward zero. Negative
  coordinates are clipped at 0 (the script's negative slice start would wrap; no released box has one).
"""
from __future__ import annotations

import numpy as np

CONVENTIONS = ("inclusive", "reference")


def pixel_ranges(boxes: np.ndarray, size: tuple[int, int], convention: str = "inclusive") -> np.ndarray:
    """[n, 4] boxes -> [n, 4] int64 inclusive pixel ranges (x0, x1, y0, y1) clipped to the (W, H) frame."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width, height = size
    if convention == "inclusive":
        x0, x1 = np.ceil(boxes[:, 0]), np.floor(boxes[:, 2])
        y0, y1 = np.ceil(boxes[:, 1]), np.floor(boxes[:, 3])
    elif convention == "reference":
        x0, x1 = np.trunc(boxes[:, 0]) + 1, np.trunc(boxes[:, 2]) + 1
        y0, y1 = np.trunc(boxes[:, 1]), np.trunc(boxes[:, 3])
    else:
        raise ValueError(f"unknown box convention {convention!r} (one of {CONVENTIONS})")
    out = np.stack([np.maximum(x0, 0), np.minimum(x1, width - 1), np.maximum(y0, 0), np.minimum(y1, height - 1)], 1)
    return out.astype(np.int64)


def range_area(ranges: np.ndarray) -> np.ndarray:
    """Pixel count of each inclusive range (0 when empty)."""
    ranges = np.asarray(ranges).reshape(-1, 4)
    w = np.maximum(ranges[:, 1] - ranges[:, 0] + 1, 0)
    h = np.maximum(ranges[:, 3] - ranges[:, 2] + 1, 0)
    return w * h


def range_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel count of the intersection of two sets of inclusive ranges, row by row."""
    a, b = np.asarray(a).reshape(-1, 4), np.asarray(b).reshape(-1, 4)
    both = np.stack([np.maximum(a[:, 0], b[:, 0]), np.minimum(a[:, 1], b[:, 1]),
                     np.maximum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])], 1)
    return range_area(both)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Pointing hit per row: x1 <= x <= x2 and y1 <= y <= y2 on the raw box (inclusive, no clipping)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b[:, 0] <= p[:, 0]) & (p[:, 0] <= b[:, 2]) & (b[:, 1] <= p[:, 1]) & (p[:, 1] <= b[:, 3])


def iou_from_counts(inter: np.ndarray, area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """|A and B| / |A or B| from pixel counts; 0 where both sets are empty."""
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(area_a, dtype=np.float64) + np.asarray(area_b, dtype=np.float64) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def uniform_expected_hit(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Expected pointing hit of a point drawn uniformly from the frame's W*H pixels: the share of pixels that
    pass the inclusive test (a pointing method's argmax is always a whole pixel of the frame)."""
    width, height = size
    return range_area(pixel_ranges(boxes, size, "inclusive")) / float(width * height)
