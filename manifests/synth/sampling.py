"""Drawing a world from its config: tasks, timelines, object placement, idle hands, appearance.

Every video has its own random stream seeded by (seed, split, index), so a video does not change when the
number of videos does, and narrations draw from a second stream so that narration settings never change
the pictures.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from manifests.synth.config import WorldConfig
from manifests.synth.geometry import hand_sprite
from manifests.synth.narration import narrate
from manifests.synth.vocab import OBJECT_BY_NAME, OBJECTS, SKIN_TONES, TABLE_COLOURS, TASKS
from manifests.synth.world import IDLE_WIGGLE, SPLITS, IdleHand, SceneObject, Step, VideoSpec, World

SPLIT_CODES = {"train": 1, "test": 2}
PLACEMENT_TRIES = 400


def video_id(split: str, index: int) -> str:
    return f"synth-{split}-{index:03d}"


def video_rng(cfg: WorldConfig, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, SPLIT_CODES[split], index, stream])


def make_world(cfg: WorldConfig) -> World:
    """The whole world (no pixels): every video's objects, steps, idle hands and narrations."""
    counts = {"train": cfg.train_videos, "test": cfg.test_videos}
    return World(cfg, tuple(sample_video(cfg, split, i) for split in SPLITS for i in range(counts[split])))


def sample_video(cfg: WorldConfig, split: str, index: int) -> VideoSpec:
    rng = video_rng(cfg, split, index, 0)
    task = int(rng.integers(len(TASKS)))
    task_name, canonical = TASKS[task]
    recipe = _recipe(rng, canonical, cfg.skip_step)
    duration = int(rng.integers(cfg.seconds[0], cfg.seconds[1] + 1))
    while len(recipe) > 1 and len(recipe) * cfg.step_seconds[0] + (len(recipe) + 1) * cfg.min_gap > duration:
        recipe = recipe[:-1]  # a short video covers the start of its task
    spans = _timeline(rng, len(recipe), duration, cfg)
    region = _region(cfg)
    names = [obj for _, obj in recipe]
    centres = _place(rng, len(names), region, cfg.radius, required=True)
    spare = [o.name for o in OBJECTS if o.name not in names]
    n_extra = min(len(spare), int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1)))
    extra = [spare[i] for i in rng.permutation(len(spare))[:n_extra]]
    centres += _place(rng, len(extra), region, cfg.radius, required=False, placed=centres)
    names += extra[:len(centres) - len(names)]  # a distractor with no free place is left out
    objects = tuple(SceneObject(n, OBJECT_BY_NAME[n].colour, OBJECT_BY_NAME[n].shape, OBJECT_BY_NAME[n].rgb, x, y)
                    for n, (x, y) in zip(names, centres))
    steps, rest = [], list(centres)
    for k, ((verb, name), (start, end)) in enumerate(zip(recipe, spans)):
        obj = names.index(name)
        target = rest[obj]
        if verb == "move":
            others = [c for i, c in enumerate(rest) if i != obj]
            target, _ = _free_point(rng, region, others, cfg.radius, away_from=rest[obj])
        steps.append(Step(k, verb, obj, name, start, end, rest[obj], target))
        rest[obj] = target
    spec = VideoSpec(
        video_id=video_id(split, index), split=split, task=task, task_name=task_name, duration=duration,
        fps=cfg.fps, width=cfg.width, height=cfg.height, radius=cfg.radius,
        table_rgb=TABLE_COLOURS[int(rng.integers(len(TABLE_COLOURS))) % cfg.table_colours],  # draw kept: same streams
        skin_rgb=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hand_angle=float((math.pi / 3 if rng.random() < 0.5 else 2 * math.pi / 3) + rng.uniform(-0.25, 0.25)),
        texture_seed=int(rng.integers(2**31)), objects=objects, steps=tuple(steps), idle_hands=())
    spec = _with_idle_hands(rng, spec, cfg, region)
    return narrate(spec, cfg, video_rng(cfg, split, index, 1))


def _recipe(rng: np.random.Generator, canonical: tuple, skip: float) -> list[tuple[str, str]]:
    kept = [s for s in canonical if rng.random() >= skip]
    if len(kept) < 2:  # skipping never leaves fewer than two steps
        kept = [canonical[i] for i in sorted(rng.choice(len(canonical), 2, replace=False))]
    return kept


def _timeline(rng: np.random.Generator, n: int, duration: int, cfg: WorldConfig) -> list[tuple[int, int]]:
    """Whole-second [start, end) spans of n steps with at least `min_gap` s of background around each."""
    lo, hi = cfg.step_seconds
    fixed = n * lo + (n + 1) * cfg.min_gap
    if fixed > duration:  # only a single step that exceeds the video (checked by the config)
        raise ValueError(f"cannot fit {n} steps in {duration} s")
    lengths = lo + rng.integers(0, hi - lo + 1, size=n)
    while lengths.sum() + (n + 1) * cfg.min_gap > duration:  # shorten the longest step until they fit
        lengths[int(np.argmax(lengths))] -= 1
    slack = duration - int(lengths.sum()) - (n + 1) * cfg.min_gap
    gaps = cfg.min_gap + rng.multinomial(slack, np.full(n + 1, 1.0 / (n + 1)))
    spans, t = [], int(gaps[0])
    for k in range(n):
        spans.append((t, t + int(lengths[k])))
        t += int(lengths[k]) + int(gaps[k + 1])
    return spans


def _region(cfg: WorldConfig) -> tuple[float, float, float, float]:
    """Where object centres may lie: (x_lo, y_lo, x_hi, y_hi), inside the centred square when crop_safe."""
    w, h = cfg.width, cfg.height
    if cfg.crop_safe:
        side = min(w, h)
        left, top, right, bottom = (w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2
    else:
        left, top, right, bottom = 0.0, 0.0, float(w), float(h)
    margin = 1.2 * cfg.radius + 2  # a lifted object (x1.8, growing to x2.3) may still reach the border briefly
    return (left + margin, top + margin, right - margin, bottom - margin)


def _spacing(radius: float) -> float:
    """Least distance between object centres at rest: shapes reach at most ~1.0 radius from their centre at
    rest, so they never touch."""
    return 2.3 * radius + 4


def _candidate(rng: np.random.Generator, region: tuple[float, float, float, float]) -> tuple[float, float]:
    x_lo, y_lo, x_hi, y_hi = region
    return (round(float(rng.uniform(x_lo, x_hi)), 2), round(float(rng.uniform(y_lo, y_hi)), 2))


def _free_point(rng: np.random.Generator, region, others: list[tuple[float, float]], radius: float,
                away_from: tuple[float, float] | None = None) -> tuple[tuple[float, float], bool]:
    """A uniformly drawn point clear of `others` (and at least 2.5 radii from `away_from`), with True; when
    no try is clear, the clearest try with False."""
    best, best_score = None, -math.inf
    for _ in range(PLACEMENT_TRIES):
        p = _candidate(rng, region)
        score = min((math.dist(p, o) - _spacing(radius) for o in others), default=0.0)
        if away_from is not None:
            score = min(score, math.dist(p, away_from) - 2.5 * radius)
        if score >= 0:
            return p, True
        if score > best_score:
            best, best_score = p, score
    return best, False


def _place(rng: np.random.Generator, n: int, region, radius: float, *, required: bool,
           placed: list[tuple[float, float]] = ()) -> list[tuple[float, float]]:
    """Centres for n objects clear of each other and of `placed`. Objects a step needs always get a place
    (the clearest found when the table is crowded); optional ones stop at the first that finds none."""
    centres: list[tuple[float, float]] = []
    for _ in range(n):
        point, clear = _free_point(rng, region, [*placed, *centres], radius)
        if not clear and not required:
            break
        centres.append(point)
    return centres


def _boxes_touch(a: tuple, b: tuple, margin: float) -> bool:
    return a[0] - margin <= b[2] and b[0] - margin <= a[2] and a[1] - margin <= b[3] and b[1] - margin <= a[3]


def _idle_hand_place(rng: np.random.Generator, spec: VideoSpec, region, t: float) -> tuple[float, float] | None:
    """A palm position whose hand (palm, forearm and wiggle) stays clear of every object at rest at time t."""
    boxes = [b for b in (spec.object_box(i, t) for i in range(len(spec.objects))) if b is not None]
    for _ in range(PLACEMENT_TRIES):
        x, y = _candidate(rng, region)
        sprite = hand_sprite(x, y, spec.hand_angle, spec.radius, spec.width, spec.height)
        hand = None if sprite is None else sprite.box()
        if hand is not None and not any(_boxes_touch(hand, b, IDLE_WIGGLE * spec.radius + 3) for b in boxes):
            return x, y
    return None


def _with_idle_hands(rng: np.random.Generator, spec: VideoSpec, cfg: WorldConfig, region) -> VideoSpec:
    """Hands that hover over empty table for a few seconds inside some background stretches."""
    hands = []
    for a, b in spec.background_spans():
        if b - a < 3 or rng.random() >= cfg.idle_hands:
            continue
        length = min(3, b - a - 2)
        start = a + 1 + int(rng.integers(0, b - a - 2 - length + 1))
        place = _idle_hand_place(rng, spec, region, float(start))
        if place is not None:
            hands.append(IdleHand(start, start + length, *place))
    return replace(spec, idle_hands=tuple(hands))
