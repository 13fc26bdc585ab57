"""The ground truth agrees with the rendered videos, decoded by the pipeline's own decoder at 1 fps exactly as
extraction decodes evaluation videos (short side to 224 would resample; we decode at 240, the short side, so
the centre crop is a pure crop and pixels compare one to one)."""
from __future__ import annotations

import numpy as np
import pytest

from manifests.ffmpeg import probe
from manifests.synth import render_frames
from manifests.synth.geometry import SHAPES, Pose, object_sprite
from pipeline.decode import Stream, decode_all

COLOUR_TOLERANCE = 40  # RGB distance after H.264 4:2:0 coding
SKIN_TOLERANCE = 25


def _near(frame: np.ndarray, rgb, tolerance: float) -> np.ndarray:
    return np.linalg.norm(frame.astype(np.float32) - np.asarray(rgb, np.float32), axis=-1) < tolerance


def _decoded(report, video) -> tuple[np.ndarray, int]:
    """Frames at t = 0, 1, 2, ... s, centre-cropped to the short side; and the crop's x offset."""
    side = min(video.width, video.height)
    directory = report.paths.train_videos if video.split == "train" else report.paths.test_videos
    frames, dec = decode_all(probe(directory / f"{video.video_id}.mp4"), [Stream("f", 1.0, size=side)])
    assert not dec.truncated and len(frames["f"]) == video.duration
    return frames["f"], (video.width - side) // 2


def _in_box(mask: np.ndarray, box, dx: int, pad: int = 2) -> float:
    """Share of the mask's pixels inside the box (moved into the crop, padded for codec blur)."""
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = box
    inside = (xs >= x1 - dx - pad) & (xs <= x2 - dx + pad) & (ys >= y1 - pad) & (ys <= y2 + pad)
    return float(inside.mean()) if len(xs) else 0.0


@pytest.fixture(scope="module")
def decoded(tiny):
    report, world = tiny
    return {v.video_id: _decoded(report, v) for v in world.videos}


def test_the_actor_is_inside_its_box_at_every_annotated_second(tiny, decoded):
    _, world = tiny
    checked = 0
    for v in world.videos:
        frames, dx = decoded[v.video_id]
        for step in v.steps:
            rgb = v.objects[step.obj].rgb
            for second, box in v.step_boxes(step):
                mask = _near(frames[second], rgb, COLOUR_TOLERANCE)
                area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
                assert _in_box(mask, box, dx) > 0.97, (v.video_id, step.name, second)
                assert mask.sum() > 0.2 * area, (v.video_id, step.name, second)  # the box is not empty
                checked += 1
    assert checked >= 20


def test_background_seconds_show_every_object_at_rest_and_no_hand_on_any(tiny, decoded):
    _, world = tiny
    idle_seconds = 0
    for v in world.videos:
        frames, dx = decoded[v.video_id]
        for a, b in v.background_spans():
            for second in range(a, b):
                frame = frames[second]
                for k, obj in enumerate(v.objects):
                    assert _in_box(_near(frame, obj.rgb, COLOUR_TOLERANCE), v.object_box(k, float(second)), dx) > 0.97
                skin = _near(frame, v.skin_rgb, SKIN_TOLERANCE)
                hand = v.hand_box(float(second))
                if hand is None:
                    assert skin.sum() < 30, (v.video_id, second)
                else:
                    idle_seconds += 1
                    assert skin.sum() > 300 and _in_box(skin, hand, dx) > 0.95
    assert idle_seconds > 0  # the tiny world has idle hands, so the check above ran


def test_action_seconds_show_the_hand_on_the_actor(tiny, decoded):
    _, world = tiny
    for v in world.videos:
        frames, dx = decoded[v.video_id]
        for step in v.steps:
            for second, _ in v.step_boxes(step):
                skin = _near(frames[second], v.skin_rgb, SKIN_TOLERANCE)
                assert skin.sum() > 300 and _in_box(skin, v.hand_box(float(second)), dx) > 0.95


def test_second_s_decodes_to_the_frame_rendered_for_t_equal_s(tiny, decoded):
    """Of the rendered frames around t = s, the decoded second s is closest to frame s * fps itself."""
    _, world = tiny
    compared = 0
    for v in world.videos:
        frames, dx = decoded[v.video_id]
        rendered = render_frames(v)[:, :, dx:dx + frames.shape[2]].astype(np.float32)
        for step in v.steps:
            for second in step.seconds:
                i = second * v.fps
                candidates = [j for j in (i - 1, i, i + 1) if 0 <= j < len(rendered)]
                errors = [np.abs(rendered[j] - frames[second]).mean() for j in candidates]
                if sorted(errors)[1] - min(errors) > 0.05:  # neighbours differ enough to tell apart
                    assert candidates[int(np.argmin(errors))] == i, (v.video_id, second, errors)
                    compared += 1
    assert compared >= 10


def test_every_shape_is_distinct_and_its_box_is_the_extent_of_its_coverage():
    masks = {}
    for shape in SHAPES:
        sprite = object_sprite(shape, Pose(50.0, 40.0), 20.0, 100, 80)
        inside = sprite.alpha >= 0.5
        ys, xs = np.nonzero(inside)
        assert sprite.box() == (sprite.x0 + xs.min(), sprite.y0 + ys.min(), sprite.x0 + xs.max(), sprite.y0 + ys.max())
        canvas = np.zeros((80, 100), bool)
        canvas[sprite.y0:sprite.y0 + inside.shape[0], sprite.x0:sprite.x0 + inside.shape[1]] = inside
        masks[shape] = canvas
    for a in SHAPES:
        for b in SHAPES:
            if a < b:
                assert (masks[a] ^ masks[b]).sum() > 60, (a, b)
