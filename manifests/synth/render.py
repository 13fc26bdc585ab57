"""Pixels: the textured table, the objects and the hands, drawn with numpy and encoded by ffmpeg.

Each frame is a cached "rest scene" (table + every object that is not being handled, at rest) plus, when
something happens, the actor's shadow, the actor and the hand drawn on top. Objects carry a darker stripe
through their centre so that spinning and flipping show in a single frame. Encoding: libx264 in one thread
with bit-exact flags and no metadata, so the same frames always give the same bytes (x264's output depends
on its thread count).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from manifests.ffmpeg import run
from manifests.synth.geometry import Sprite, hand_sprite, object_sprite
from manifests.synth.world import VideoSpec

BAND_SHADE = 0.55  # the stripe's brightness relative to the object's colour
SHADOW_OFFSET = 0.2  # how far a lifted object's shadow falls, in object radii
SHADOW_DARKNESS = 0.4
CRF = 18
PRESET = "veryfast"


def _upsampled_noise(rng: np.random.Generator, cells: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid, bilinearly interpolated to the frame."""
    grid = rng.uniform(-1, 1, size=(cells[0] + 1, cells[1] + 1)).astype(np.float32)
    ys = np.linspace(0, cells[0], height, dtype=np.float32)
    xs = np.linspace(0, cells[1], width, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), cells[0] - 1), np.minimum(xs.astype(int), cells[1] - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def table_texture(video: VideoSpec) -> np.ndarray:
    """The table: the video's muted colour with a wood-like grain and soft blotches (float32 [H, W, 3])."""
    rng = np.random.default_rng(video.texture_seed)
    h, w = video.height, video.width
    warp = _upsampled_noise(rng, (3, 4), h, w)
    blotch = _upsampled_noise(rng, (5, 7), h, w)
    period = rng.uniform(9, 16)
    tilt = rng.uniform(-0.3, 0.3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = np.sin(2 * np.pi * (yy + tilt * xx + 6.0 * warp) / period)
    fine = rng.uniform(-1, 1, size=(h, w)).astype(np.float32)
    shade = 1 + 0.09 * grain + 0.10 * blotch + 0.025 * fine
    return np.clip(np.asarray(video.table_rgb, np.float32) * shade[..., None], 0, 255)


def _blend(image: np.ndarray, sprite: Sprite, rgb: tuple[int, int, int]) -> None:
    """Paint `rgb` over `image` (uint8 or float32 [H, W, 3], in place) with the sprite's coverage."""
    h, w = sprite.alpha.shape
    region = image[sprite.y0:sprite.y0 + h, sprite.x0:sprite.x0 + w]
    colour = np.broadcast_to(np.asarray(rgb, np.float32), (h, w, 3))
    if sprite.band is not None:
        colour = np.where(sprite.band[..., None], colour * BAND_SHADE, colour)
    a = sprite.alpha[..., None]
    mixed = region.astype(np.float32) * (1 - a) + colour * a
    region[...] = np.rint(mixed) if image.dtype == np.uint8 else mixed


def _draw_object(image: np.ndarray, video: VideoSpec, obj: int, t: float) -> None:
    o = video.objects[obj]
    sprite = object_sprite(o.shape, video.object_pose(obj, t), video.radius, video.width, video.height)
    if sprite is not None:
        _blend(image, sprite, o.rgb)


def _draw_shadow(image: np.ndarray, video: VideoSpec, obj: int, t: float) -> None:
    """The shadow a lifted object casts on the table (light from the top left)."""
    pose = video.object_pose(obj, t)
    offset = SHADOW_OFFSET * video.radius
    shifted = replace(pose, x=pose.x + offset, y=pose.y + 1.4 * offset)
    sprite = object_sprite(video.objects[obj].shape, shifted, video.radius, video.width, video.height)
    if sprite is not None:
        _blend(image, replace(sprite, alpha=sprite.alpha * SHADOW_DARKNESS, band=None), (0, 0, 0))


def _draw_hand(image: np.ndarray, video: VideoSpec, t: float) -> None:
    palm = video.hand_pose(t)
    if palm is None:
        return
    sprite = hand_sprite(*palm, video.hand_angle, video.radius, video.width, video.height)
    if sprite is not None:
        _blend(image, sprite, video.skin_rgb)


def _rest_scene(video: VideoSpec, table: np.ndarray, t: float, skip: int | None) -> np.ndarray:
    scene = table.copy()
    for obj in range(len(video.objects)):
        if obj != skip:
            _draw_object(scene, video, obj, t)
    return np.rint(scene).astype(np.uint8)


def render_frames(video: VideoSpec) -> np.ndarray:
    """Every frame of the video, uint8 [n_frames, H, W, 3] (frame i is shown at t = i / fps)."""
    table = table_texture(video)
    frames = np.empty((video.n_frames, video.height, video.width, 3), np.uint8)
    scenes: dict[tuple[int, int | None], np.ndarray] = {}
    for i in range(video.n_frames):
        t = i / video.fps
        step = video.step_at(t)
        actor = None if step is None else step.obj
        done = sum(1 for s in video.steps if s.end <= t)  # rest positions change only when a step ends
        key = (done, actor)
        if key not in scenes:
            scenes[key] = _rest_scene(video, table, t, actor)
        frames[i] = scenes[key]
        if actor is not None:
            _draw_shadow(frames[i], video, actor, t)
            _draw_object(frames[i], video, actor, t)
        _draw_hand(frames[i], video, t)
    return frames


def encode(frames: np.ndarray, fps: int, path: str | os.PathLike) -> Path:
    """Encode uint8 RGB frames [N, H, W, 3] to an H.264 mp4, byte-identical for identical frames."""
    _, h, w, _ = frames.shape
    # keyframes every 2 s keep the seeks of the 16-s training windows short
    args = ["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
            "-i", "pipe:0", "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p",
            "-g", str(2 * fps), "-threads", "1", "-map_metadata", "-1", "-fflags", "+bitexact",
            "-flags:v", "+bitexact", str(path)]
    # a flat byte view of the frames instead of .tobytes(): no copy of the whole video
    run(args, what=f"encoding synthetic video {path}", stdin=memoryview(np.ascontiguousarray(frames)).cast("B"))
    return Path(path)


def render_video(video: VideoSpec, path: str | os.PathLike) -> Path:
    return encode(render_frames(video), video.fps, path)
