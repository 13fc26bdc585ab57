"""Narrations imitate ASR: loosely aligned, with fillers, partial names and lines about nothing visible."""
from __future__ import annotations

import numpy as np
import pytest

from manifests.synth import WorldConfig, make_world
from manifests.synth.vocab import DISTRACTORS, FILLERS, FOLLOW_UPS, VERBS

CONFIG = WorldConfig(seed=5, train_videos=60, test_videos=0)


@pytest.fixture(scope="module")
def world():
    return make_world(CONFIG)


def _step_lines(world):
    return [(v, n) for v in world.videos for n in v.narrations if n.kind == "step"]


def test_step_lines_are_shifted_from_their_steps_within_bias_and_jitter(world):
    lo = CONFIG.narration_bias[0] - CONFIG.narration_jitter
    hi = CONFIG.narration_bias[1] + CONFIG.narration_jitter
    shifts = np.array([n.start - v.steps[n.step].start for v, n in _step_lines(world) if n.start > 0])
    assert np.all(shifts >= lo - 0.01) and np.all(shifts <= hi + 0.01)
    assert np.mean(np.abs(shifts)) > 0.8  # loosely aligned, not at the action's start
    assert (shifts < -0.5).mean() > 0.05 and (shifts > 0.5).mean() > 0.3  # before and (more often) after


def test_every_step_line_opens_with_a_filler_and_names_its_step_loosely(world):
    lines = _step_lines(world)
    full = synonym = partial = 0
    for v, n in lines:
        step = v.steps[n.step]
        obj = v.objects[step.obj]
        assert any(n.text.startswith(f + " ") for f in FILLERS), n.text
        assert n.text == n.text.lower() and not any(c in n.text for c in ".,!?")
        full += step.object_name in n.text and f" {step.verb} " in f" {n.text} "
        synonym += any(f" {s} " in f" {n.text} " for s in VERBS[step.verb][1])
        partial += step.object_name not in n.text and (obj.shape in n.text or obj.colour in n.text)
    assert full > 0.5 * len(lines)
    assert synonym > 0.05 * len(lines) and partial > 0.05 * len(lines)


def test_some_steps_are_not_narrated_and_some_get_vague_follow_ups(world):
    steps = sum(len(v.steps) for v in world.videos)
    narrated = {(v.video_id, n.step) for v, n in _step_lines(world)}
    assert 0.02 < 1 - len(narrated) / steps < 0.25
    follow_ups = [n for v in world.videos for n in v.narrations if n.kind == "follow_up"]
    assert follow_ups and all(any(f in n.text for f in FOLLOW_UPS) for n in follow_ups)


def test_every_video_has_distractor_lines_said_over_background(world):
    for v in world.videos:
        lines = [n for n in v.narrations if n.kind == "distractor"]
        assert CONFIG.distractor_narrations[0] <= len(lines) <= CONFIG.distractor_narrations[1]
        assert all(n.text in DISTRACTORS and n.step is None for n in lines)
        assert all(v.step_at(n.start) is None for n in lines)
        assert lines[0].start < v.steps[0].start  # the greeting comes first


def test_lines_lie_inside_the_video_and_are_sorted(world):
    for v in world.videos:
        starts = [n.start for n in v.narrations]
        assert starts == sorted(starts)
        for n in v.narrations:
            assert 0 <= n.start and n.end <= v.duration and n.end - n.start >= 0.5
            assert round(n.start, 2) == n.start and round(n.end, 2) == n.end
