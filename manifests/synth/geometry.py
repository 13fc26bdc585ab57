"""Shapes as signed distances, poses, and the anti-aliased sprites both the renderer and the annotations use.

One function (`object_sprite`) decides which pixels an object covers; the renderer paints exactly those
pixels and the ground-truth box is read off the same coverage (pixels with coverage >= 0.5), so boxes and
frames agree by construction. Pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5); boxes
are inclusive pixel index extents [x1, y1, x2, y2] (the pixel columns x1..x2 and rows y1..y2 are covered).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
BAND_HALF_WIDTH = 0.14  # the darker marker stripe through every object, in units of the object radius


@dataclass(frozen=True)
class Pose:
    """Where an object is drawn: centre (pixels), rotation (radians, clockwise on screen) and scale."""

    x: float
    y: float
    angle: float = 0.0
    sx: float = 1.0
    sy: float = 1.0


@dataclass(frozen=True)
class Sprite:
    """Coverage of one shape on a patch of the frame whose top-left pixel is (x0, y0)."""

    x0: int
    y0: int
    alpha: np.ndarray  # float32 [h, w] in [0, 1]
    band: np.ndarray | None  # bool [h, w]: the marker stripe (objects only)

    def box(self) -> tuple[int, int, int, int] | None:
        """Inclusive pixel extent of the covered pixels (coverage >= 0.5), or None when nothing is covered."""
        inside = self.alpha >= 0.5
        rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
        if not len(rows):
            return None
        return (self.x0 + int(cols[0]), self.y0 + int(rows[0]), self.x0 + int(cols[-1]), self.y0 + int(rows[-1]))


def _box_sd(u: np.ndarray, v: np.ndarray, bu: float, bv: float) -> np.ndarray:
    qu, qv = np.abs(u) - bu, np.abs(v) - bv
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0)


def _polygon_sd(u: np.ndarray, v: np.ndarray, normal_angles: np.ndarray, inradius: float) -> np.ndarray:
    # exact inside, a close under-estimate outside: enough for a one-pixel anti-aliased edge
    proj = u[..., None] * np.cos(normal_angles) + v[..., None] * np.sin(normal_angles)
    return proj.max(-1) - inradius


_TRIANGLE_NORMALS = np.radians([90.0, 210.0, 330.0])  # apex up (y grows downwards on screen)
_HEXAGON_NORMALS = np.radians(np.arange(6) * 60.0)


def shape_sd(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of a shape of circumradius about 1 at local coordinates (u, v)."""
    if shape == "circle":
        return np.hypot(u, v) - 0.95
    if shape == "square":
        return _box_sd(u, v, 0.72, 0.72)
    if shape == "triangle":
        return _polygon_sd(u, v - 0.25, _TRIANGLE_NORMALS, 0.5)  # shifted so its box is centred
    if shape == "hexagon":
        return _polygon_sd(u, v, _HEXAGON_NORMALS, 0.86)
    if shape == "cross":
        return np.minimum(_box_sd(u, v, 0.92, 0.32), _box_sd(u, v, 0.32, 0.92))
    if shape == "star":
        r, theta = np.hypot(u, v), np.arctan2(v, u) + math.pi / 2  # a point straight up
        sector = 2 * math.pi / 5
        frac = np.abs(np.mod(theta, sector) / (sector / 2) - 1.0)  # 1 at the points, 0 between them
        return (r - (0.45 + 0.55 * frac)) * 0.8
    raise ValueError(f"unknown shape {shape!r} (one of {SHAPES})")


def _patch(cx: float, cy: float, half: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(math.floor(cx - half))), max(0, int(math.floor(cy - half)))
    x1, y1 = min(width, int(math.ceil(cx + half)) + 1), min(height, int(math.ceil(cy + half)) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _local(pose: Pose, radius: float, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of the patch in the pose's frame, in units of the radius (before scaling)."""
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - pose.x
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - pose.y
    c, s = math.cos(pose.angle), math.sin(pose.angle)
    return (c * xs + s * ys) / radius, (-s * xs + c * ys) / radius


def object_sprite(shape: str, pose: Pose, radius: float, width: int, height: int) -> Sprite | None:
    """Coverage of an object of `radius` pixels at `pose` in a width x height frame (None: off screen)."""
    half = radius * max(pose.sx, pose.sy) * 1.2 + 2  # every shape lies within 1.15 radii
    patch = _patch(pose.x, pose.y, half, width, height)
    if patch is None:
        return None
    u, v = _local(pose, radius, *patch)
    u, v = u / pose.sx, v / pose.sy
    px_per_unit = radius * min(pose.sx, pose.sy)
    alpha = np.clip(0.5 - shape_sd(shape, u, v) * px_per_unit, 0.0, 1.0).astype(np.float32)
    return Sprite(patch[0], patch[1], alpha, np.abs(v) < BAND_HALF_WIDTH)


@functools.lru_cache(maxsize=8192)
def object_box(shape: str, pose: Pose, radius: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box of `object_sprite` (cached: objects at rest ask for the same pose again and again)."""
    sprite = object_sprite(shape, pose, radius, width, height)
    return None if sprite is None else sprite.box()


def _segment_distance(u: np.ndarray, v: np.ndarray, length: float) -> np.ndarray:
    """Distance to the segment from (0, 0) to (length, 0)."""
    return np.hypot(u - np.clip(u, 0.0, length), v)


def hand_sprite(x: float, y: float, angle: float, radius: float, width: int, height: int) -> Sprite | None:
    """A hand at (x, y): an elliptic palm with its forearm (a capsule) pointing away at `angle`. `radius` is
    the radius of the objects it handles; the hand is about as large as they are, and the forearm reaches
    3.5 radii towards the frame's edge, so a hand shows in several grid cells."""
    forearm = 3.5 * radius
    cx, cy = x + math.cos(angle) * forearm / 2, y + math.sin(angle) * forearm / 2
    patch = _patch(cx, cy, forearm / 2 + 0.8 * radius + 2, width, height)
    if patch is None:
        return None
    u, v = _local(Pose(x, y, angle), 1.0, *patch)
    palm = (np.hypot(u / (0.6 * radius), v / (0.42 * radius)) - 1.0) * 0.42 * radius
    arm = _segment_distance(u, v, forearm) - 0.38 * radius
    alpha = np.clip(0.5 - np.minimum(palm, arm), 0.0, 1.0).astype(np.float32)
    return Sprite(patch[0], patch[1], alpha, None)
