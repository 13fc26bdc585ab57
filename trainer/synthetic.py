"""Generated feature stores with a learnable signal, written through the real store writer (tests, benchmark).

Each video has events; event e has a concept vector c_e, lasts `event_s` seconds and occupies a block of
`block` x `block` grid cells at a random position. A frame's grid tokens are the video's scene vector plus
noise, except inside the block of an event in progress, where they are strength * c_e plus noise; its global
vector is the mean of its grid tokens (like a CLS token, it sees everything). Each event is narrated by a
caption that starts `offset` seconds off the event (weak alignment: the event is inside the caption's window,
not at its centre); its first `concept_words` word tokens are noisy copies of strength * c_e, then come
filler words shared by all captions ("so", "now", ...), then padding. So the right frames are found by
matching words to frames, and the right regions by matching words to grid tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.store import ShardWriter, consolidate, init_store, layout

MAX_WORDS = 20


@dataclass(frozen=True)
class SyntheticSpec:
    videos: int = 8
    seconds: float = 40.0
    fps: float = 5.0                # clip frames per second
    dim: int = 32                   # all feature widths
    concepts: int = 24
    events: int = 4                 # per video (one caption each)
    event_s: float = 3.0
    max_offset: float = 5.0         # caption start = event start + uniform(-max_offset, max_offset)
    block: int = 3
    concept_words: int = 3
    filler_words: int = 3
    noise: float = 0.3
    strength: float = 3.0
    encoders: tuple[str, ...] = ("clip",)
    s3d_fps: float = 8.0
    s3d_window: int = 16            # frames per s3d window -> T' = window // 8
    unaligned: bool = False         # text features are a fixed random rotation of the video ones: only a
                                    # learned projection matches words to regions
    shards: int = 1
    seed: int = 0


@dataclass
class Truth:
    """Where each caption's event is: caption_id -> (video, start, end, row, col, concept)."""
    events: dict[str, tuple[str, float, float, int, int, int]] = field(default_factory=dict)


def encoder_specs(spec: SyntheticSpec) -> dict[str, dict]:
    d = spec.dim
    base = {"model": "synthetic", "weights_sha256": f"synthetic-seed{spec.seed}", "max_words": MAX_WORDS,
            "dims": {"global": d, "grid": d, "sentence": d, "words": d},
            "preprocessing": {"size": 224, "resize": "center-crop", "value_range": [0, 1], "normalize": "none"}}
    out = {"clip": {**base, "encoder": "clip", "grid": [7, 7]},
           "s3d": {**base, "encoder": "s3d", "grid": [spec.s3d_window // 8, 7, 7], "fps": spec.s3d_fps,
                   "window": spec.s3d_window, "sentence_pool": "max"}}
    return {k: out[k] for k in spec.encoders}


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _grid(times: np.ndarray, scene: np.ndarray, events: list, spec: SyntheticSpec, concepts, rng, span: float):
    """Grid tokens [N, 7, 7, d] of frames (or windows of length `span`) starting at `times`."""
    n, d = len(times), spec.dim
    grid = spec.strength * scene + spec.noise * rng.standard_normal((n, 7, 7, d))
    for start, r, c, k in events:
        active = (times < start + spec.event_s) & (times + span > start)
        block = spec.strength * concepts[k] + spec.noise * rng.standard_normal((int(active.sum()), spec.block,
                                                                                 spec.block, d))
        grid[active, r:r + spec.block, c:c + spec.block] = block
    return grid


def _captions(vid: str, events: list, spec: SyntheticSpec, concepts, fillers, rng) -> tuple[list, dict]:
    """Caption rows and features; `concepts` here are the text-side concept vectors."""
    rows, words, masks, sentences = [], [], [], []
    for e, (start, r, c, k) in enumerate(events):
        cap_start = float(np.clip(start + rng.uniform(-spec.max_offset, spec.max_offset), 0, spec.seconds - 2))
        rows.append({"caption_id": f"{vid}:{e}", "video_id": vid, "start": round(cap_start, 3),
                     "end": round(cap_start + 2.0, 3), "text": f"concept {k}", "kind": "narration"})
        w = np.zeros((MAX_WORDS, spec.dim))
        n = spec.concept_words
        w[:n] = spec.strength * concepts[k] + spec.noise * rng.standard_normal((n, spec.dim))
        w[n:n + spec.filler_words] = fillers[rng.integers(len(fillers), size=spec.filler_words)]
        m = np.zeros(MAX_WORDS, bool)
        m[:n + spec.filler_words] = True
        words.append(w), masks.append(m)
        sentences.append(spec.strength * concepts[k] + spec.noise * rng.standard_normal(spec.dim))
    feats = {"sentence": np.stack(sentences), "words": np.stack(words), "mask": np.stack(masks)}
    return rows, feats


def _video(writer: ShardWriter, vid: str, spec: SyntheticSpec, concepts: tuple, fillers, rng, truth: Truth) -> None:
    concepts, text_concepts = concepts
    scene = _unit(rng, 1, spec.dim)[0]
    slots = np.linspace(0, spec.seconds - spec.event_s, spec.events + 2)[1:-1]
    events = [(float(round(s, 1)), int(rng.integers(0, 8 - spec.block)), int(rng.integers(0, 8 - spec.block)),
               int(rng.integers(spec.concepts))) for s in slots]
    meta = {"segment_id": f"{vid}:0.000-end@{spec.fps:g}", "video_id": vid, "start": 0.0, "end": None,
            "fps": spec.fps}
    with writer.segment(meta) as seg:
        if "clip" in spec.encoders:
            times = np.arange(int(spec.seconds * spec.fps)) / spec.fps
            grid = _grid(times, scene, events, spec, concepts, rng, 1.0 / spec.fps)
            writer.append_frames("clip", **{"times": times, "grid": grid, "global": grid.mean((1, 2))})
        if "s3d" in spec.encoders:
            span = spec.s3d_window / spec.s3d_fps
            times = np.arange(int(spec.seconds / span)) * span
            t_prime = spec.s3d_window // 8
            grid = np.stack([_grid(times + span * j / t_prime, scene, events, spec, concepts, rng, span / t_prime)
                             for j in range(t_prime)], axis=1)
            writer.append_frames("s3d", **{"times": times, "grid": grid, "global": grid.mean((1, 2, 3)),
                                           "valid": np.full(len(times), spec.s3d_window, np.int16)})
        seg.info.update(truncated=False, end_actual=spec.seconds)
    rows, feats = _captions(vid, events, spec, text_concepts, fillers, rng)
    writer.add_captions(rows, {enc: feats for enc in spec.encoders})
    for row, (start, r, c, k) in zip(rows, events):
        truth.events[row["caption_id"]] = (vid, start, start + spec.event_s, r, c, k)


def write_synthetic_store(root: str, spec: SyntheticSpec = SyntheticSpec()) -> Truth:
    """Write (or overwrite the shards of) a synthetic store at `root`; returns where every event is."""
    rng = np.random.default_rng(spec.seed)
    concepts = _unit(rng, spec.concepts, spec.dim)
    fillers = _unit(rng, 8, spec.dim)
    rotation = np.linalg.qr(rng.standard_normal((spec.dim, spec.dim)))[0] if spec.unaligned else np.eye(spec.dim)
    specs = encoder_specs(spec)
    init_store(root, specs)
    truth = Truth()
    per_shard = -(-spec.videos // spec.shards)
    for s in range(spec.shards):
        writer = ShardWriter(root, layout.new_shard_name(), specs)
        for v in range(s * per_shard, min(spec.videos, (s + 1) * per_shard)):
            _video(writer, f"vid{v:05d}", spec, (concepts, concepts @ rotation), fillers, rng, truth)
        writer.commit()
    consolidate(root)
    return truth
