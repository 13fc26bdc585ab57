"""ASR-like narrations of a video.

Each step is narrated (unless dropped) by one line that names it, loosely: a filler word first ("so",
"okay now", "um"), sometimes a synonym of the verb or only part of the object's name, lower case and
without punctuation as ASR writes it. Its start is the step's start plus a per-video bias (speakers talk
before or after they act) plus per-line jitter, so the line often starts seconds away from the action.
Some steps get a vague follow-up line; a few distractor lines describe nothing visible. Times are rounded
to 0.01 s (what the caption files hold) and clipped to the video.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from manifests.synth.config import WorldConfig
from manifests.synth.vocab import DISTRACTORS, FILLERS, FOLLOW_UPS, PARTIAL_TEMPLATES, STEP_TEMPLATES, VERBS
from manifests.synth.world import Narration, Step, VideoSpec

MIN_LENGTH = 0.5  # a line clipped shorter than this by the video's ends is dropped


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def step_text(rng: np.random.Generator, step: Step, colour: str, shape: str, cfg: WorldConfig) -> str:
    """One ASR line for a step."""
    verb_ing, synonyms = VERBS[step.verb]
    use_synonym = rng.random() < cfg.synonym
    verb = _pick(rng, synonyms) if use_synonym else step.verb
    filler = _pick(rng, FILLERS)
    if rng.random() < cfg.partial_name:
        template = _pick(rng, PARTIAL_TEMPLATES)
    else:
        # the "-ing" template only knows the step's own verb
        templates = [t for t in STEP_TEMPLATES if not (use_synonym and "{verb_ing}" in t)]
        template = _pick(rng, templates)
    return template.format(filler=filler, verb=verb, verb_ing=verb_ing, obj=step.object_name, colour=colour,
                           shape=shape)


def _clip(video: VideoSpec, start: float, end: float, text: str, kind: str, step: int | None) -> Narration | None:
    start, end = round(max(0.0, start), 2), round(min(float(video.duration), end), 2)
    return Narration(start, end, text, kind, step) if end - start >= MIN_LENGTH else None


def _step_lines(rng: np.random.Generator, video: VideoSpec, cfg: WorldConfig, bias: float) -> list[Narration | None]:
    lines = []
    for step in video.steps:
        if rng.random() < cfg.narration_drop:
            continue
        obj = video.objects[step.obj]
        start = step.start + bias + rng.uniform(-cfg.narration_jitter, cfg.narration_jitter)
        end = start + rng.uniform(1.5, 3.5)
        lines.append(_clip(video, start, end, step_text(rng, step, obj.colour, obj.shape, cfg), "step", step.index))
        if rng.random() < cfg.follow_up:
            f_start = end + rng.uniform(0.2, 1.5)
            text = f"{_pick(rng, FILLERS)} {_pick(rng, FOLLOW_UPS)}" if rng.random() < 0.5 else _pick(rng, FOLLOW_UPS)
            lines.append(_clip(video, f_start, f_start + rng.uniform(1.0, 2.5), text, "follow_up", step.index))
    return lines


def _distractor_lines(rng: np.random.Generator, video: VideoSpec, cfg: WorldConfig) -> list[Narration | None]:
    """Lines about nothing visible, said during background stretches (the first one in the intro)."""
    gaps = video.background_spans()
    n = int(rng.integers(cfg.distractor_narrations[0], cfg.distractor_narrations[1] + 1))
    texts = [DISTRACTORS[i] for i in rng.permutation(len(DISTRACTORS))[:n]]
    lines = []
    for k, text in enumerate(texts):
        a, b = gaps[0] if k == 0 else gaps[int(rng.integers(len(gaps)))]
        start = rng.uniform(a, max(a, b - 1.0))
        lines.append(_clip(video, start, start + rng.uniform(1.5, 3.0), text, "distractor", None))
    return lines


def narrate(video: VideoSpec, cfg: WorldConfig, rng: np.random.Generator) -> VideoSpec:
    """The video with its narrations, sorted by start time."""
    bias = rng.uniform(*cfg.narration_bias)
    lines = [n for n in _step_lines(rng, video, cfg, bias) + _distractor_lines(rng, video, cfg) if n is not None]
    lines.sort(key=lambda n: (n.start, n.end, n.text))
    return replace(video, narrations=tuple(lines))
