"""The world model without pixels: task grammar, timelines, placement, hands, determinism of sampling."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from manifests.synth import BACKGROUND, WorldConfig, make_world, read_world
from manifests.synth.geometry import object_sprite
from manifests.synth.vocab import TASKS, all_step_names, step_name
from tests.synth.conftest import TINY

DEFAULT = WorldConfig()


def _overlap(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@pytest.fixture(scope="module")
def default_world():
    return make_world(DEFAULT)


def test_tiny_world_shows_every_verb_and_idle_hands():
    world = make_world(TINY)
    assert {s.verb for v in world.videos for s in v.steps} == {"move", "spin", "grow", "shake", "flip"}
    assert any(v.idle_hands for v in world.videos)


def test_vocabulary_is_fixed_and_steps_follow_their_task_in_order(default_world):
    names = all_step_names()
    assert len(names) == len(set(names)) == len({step_name(v, o) for _, steps in TASKS for v, o in steps}) >= 30
    for v in default_world.videos:
        canonical = [step_name(verb, obj) for verb, obj in TASKS[v.task][1]]
        got = [s.name for s in v.steps]
        assert set(got) <= set(names)
        positions = [canonical.index(n) for n in got]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)  # ordered subsequence
        assert len({s.obj for s in v.steps}) == len(v.steps)  # one object per step within a video
        assert len(v.steps) >= 2
    per_name = {n: sum(s.name == n for v in default_world.videos for s in v.steps) for n in names}
    assert sum(c > 0 for c in per_name.values()) >= 15  # step names recur across videos


def test_timeline_is_whole_seconds_with_background_between_steps(default_world):
    lo, hi = DEFAULT.step_seconds
    for v in default_world.videos:
        assert DEFAULT.seconds[0] <= v.duration <= DEFAULT.seconds[1]
        bounds = [t for s in v.steps for t in (s.start, s.end)]
        assert all(isinstance(t, int) for t in bounds)
        assert all(lo <= s.end - s.start <= hi for s in v.steps)
        spans = v.background_spans()
        assert len(spans) == len(v.steps) + 1 and all(b - a >= DEFAULT.min_gap for a, b in spans)
        labels = [v.label_at_second(s) for s in range(v.duration)]
        assert labels.count(BACKGROUND) == sum(b - a for a, b in spans)


def _coverage(v, obj: int, t: float) -> np.ndarray:
    canvas = np.zeros((v.height, v.width), bool)
    sprite = object_sprite(v.objects[obj].shape, v.object_pose(obj, t), v.radius, v.width, v.height)
    h, w = sprite.alpha.shape
    canvas[sprite.y0:sprite.y0 + h, sprite.x0:sprite.x0 + w] = sprite.alpha >= 0.5
    return canvas


def test_objects_never_touch_at_rest_and_stay_inside_the_centre_crop(default_world):
    side = min(DEFAULT.width, DEFAULT.height)
    left = (DEFAULT.width - side) / 2
    for v in default_world.videos:
        for a, _ in v.background_spans():
            covered = np.zeros((v.height, v.width), np.int32)
            for k in range(len(v.objects)):
                x1, y1, x2, y2 = v.object_box(k, float(a))
                assert left <= x1 and x2 < left + side and 0 <= y1 and y2 < DEFAULT.height
                covered += _coverage(v, k, float(a))
            assert covered.max() == 1  # no pixel belongs to two objects


def test_hand_is_on_the_actor_during_steps_and_on_no_object_otherwise(default_world):
    for v in default_world.videos[:12]:
        for s in range(v.duration):
            hand = v.hand_box(float(s))
            step = v.step_at(s)
            objects = [v.object_box(k, float(s)) for k in range(len(v.objects))]
            if step is not None:
                assert hand is not None and _overlap(hand, objects[step.obj])
            elif hand is not None:
                assert not any(_overlap(hand, box) for box in objects)


def test_centre_prior_and_random_point_are_beatable(default_world):
    w, h = DEFAULT.width, DEFAULT.height
    centre_hits, areas, centres = [], [], []
    for v in default_world.videos:
        for step in v.steps:
            for _, (x1, y1, x2, y2) in v.step_boxes(step):
                centre_hits.append(x1 <= w / 2 <= x2 and y1 <= h / 2 <= y2)
                areas.append((x2 - x1 + 1) * (y2 - y1 + 1) / (w * h))
                centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
    centres = np.array(centres)
    assert np.mean(centre_hits) < 0.30  # real GYT: 67 %
    assert np.mean(areas) < 0.15  # the expected pointing accuracy of a uniformly random point
    assert centres[:, 0].std() > 0.15 * min(w, h) and centres[:, 1].std() > 0.15 * min(w, h)


def _pictures(v) -> tuple:
    return (v.duration, v.objects, v.steps, v.idle_hands, v.table_rgb, v.skin_rgb, v.texture_seed, v.hand_angle)


def test_a_video_does_not_depend_on_the_number_of_videos_or_on_narration_settings():
    few = make_world(replace(TINY, train_videos=1, test_videos=1))
    more = make_world(replace(TINY, train_videos=3, test_videos=2))
    assert few.split("train")[0] == more.split("train")[0]
    assert few.split("test")[0] == more.split("test")[0]
    base, talkative = make_world(TINY), make_world(replace(TINY, narration_jitter=0.2, synonym=0.9))
    assert [_pictures(v) for v in base.videos] == [_pictures(v) for v in talkative.videos]
    assert [v.narrations for v in base.videos] != [v.narrations for v in talkative.videos]


def test_world_json_round_trips(tiny):
    report, world = tiny
    assert world == make_world(TINY)
    assert read_world(report.paths.world) == world


@pytest.mark.parametrize("change, message", [
    (dict(width=321), "even"), (dict(seconds=(5, 5), step_seconds=(4, 6), min_gap=1), "cannot hold"),
    (dict(seconds=(20, 10)), "empty"), (dict(object_size=0.6), "object_size"), (dict(idle_hands=1.5), "probability"),
    (dict(train_videos=0, test_videos=0), "at least one video"),
])
def test_config_rejects_impossible_worlds(change, message):
    with pytest.raises(ValueError, match=message):
        WorldConfig(**{**TINY.as_dict(), **change})


def test_config_from_dict_rejects_unknown_keys():
    assert WorldConfig.from_dict(TINY.as_dict()) == TINY
    with pytest.raises(ValueError, match="unknown"):
        WorldConfig.from_dict({**TINY.as_dict(), "colour": "red"})
