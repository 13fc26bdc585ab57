"""What every scorer shares: errors, the missing-prediction policy, frame sizes and protocol settings."""
from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eval.metrics.heatmaps import MaskRule
from manifests.benchmarks.gyt import load_sizes

MISSING_POLICIES = ("fail", "miss")
# The published spatial script's rule: `--thre 1e-4` on raw roll-out values. The paper: 0.01, and since raw
# roll-out values sum to 1 per clip, 0.01 only makes sense on maps normalised by their maximum.
PAPER_MASK = MaskRule(threshold=0.01, normalise=True)
REFERENCE_MASK = MaskRule(threshold=1e-4, normalise=False)
# The published script splits mean IoU by ground-truth mask size at 50,000 pixels ("sat" vs "wide").
LARGE_BOX_PIXELS = 50_000
# Frame sizes are bounded: heatmaps are upsampled to the frame, so a mistyped size would allocate without end.
MAX_FRAME_SIDE = 8192


class ScoreError(ValueError):
    """Predictions and annotations cannot be scored together (missing items, mismatched segments, ...)."""


class MissingPredictionsError(ScoreError):
    def __init__(self, what: str, missing: list[str]):
        self.missing = missing
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
        super().__init__(f"the predictions lack {len(missing)} {what}: {shown}. Pass --missing miss to score "
                         f"them as misses (they stay in every denominator).")


# Mask rules a predictions file may name in its metadata (`"mask_rule": {"name": ...}`), for maps on a scale
# of their own. "cosine-0.5": the paper's rule for the frozen-feature baselines (CLIP, MIL-NCE; CVPR appendix
# 8.3: "normalize the sentence and region features, then select a spatial threshold 0.5"): a pixel is in the
# mask when its (upsampled) cosine is >= 0.5, raw values, no max-normalisation. `python -m eval.baselines
# global-sim --mask-rule cosine-0.5` writes it; the scorers that read it apply it unless a flag overrides.
NAMED_MASK_RULES = {"cosine-0.5": MaskRule(threshold=0.5, normalise=False)}


class MaskRuleOverrideWarning(UserWarning):
    """A scorer flag overrides the mask rule the predictions file names."""


@dataclass(frozen=True)
class MaskOptions:
    rule: MaskRule
    box_convention: str  # "inclusive" (paper) or "reference" (ground-truth mask shifted one pixel in x)
    named: str | None = None  # the predictions' named rule applied (NAMED_MASK_RULES), None: the protocol's


def recorded_mask_rule(metadata: dict | None, path: str = "the predictions") -> str | None:
    """The name of the mask rule a predictions file's metadata records (None when it records none)."""
    entry = (metadata or {}).get("mask_rule")
    if entry is None:
        return None
    name = entry.get("name") if isinstance(entry, dict) else None
    if name not in NAMED_MASK_RULES:
        raise ScoreError(f"{path}: metadata 'mask_rule' {entry!r} names no known rule (one of "
                         f"{sorted(NAMED_MASK_RULES)})")
    return name


def mask_options(protocol: str, threshold: float | None = None, normalise: str | None = None,
                 metadata: dict | None = None, path: str = "the predictions") -> MaskOptions:
    """Protocol defaults for region masks, with optional overrides of the threshold and the normalisation.
    With the predictions' `metadata` naming a rule (`recorded_mask_rule`), that rule replaces the protocol's;
    an explicit threshold or normalisation still wins, with a MaskRuleOverrideWarning."""
    base = PAPER_MASK if protocol == "paper" else REFERENCE_MASK
    named = recorded_mask_rule(metadata, path)
    if named is not None:
        base = NAMED_MASK_RULES[named]
        if threshold is not None or normalise is not None:
            warnings.warn(MaskRuleOverrideWarning(
                f"{path} names mask rule {named!r} (threshold {base.threshold}, normalise "
                f"{'max' if base.normalise else 'none'}); overridden by mask_threshold={threshold}, "
                f"mask_normalise={normalise}"), stacklevel=2)
    rule = MaskRule(base.threshold if threshold is None else threshold,
                    base.normalise if normalise is None else normalise == "max")
    overridden = named is not None and rule != NAMED_MASK_RULES[named]
    return MaskOptions(rule, "inclusive" if protocol == "paper" else "reference", None if overridden else named)


def check_missing_policy(policy: str) -> None:
    if policy not in MISSING_POLICIES:
        raise ValueError(f"unknown missing policy {policy!r} (one of {MISSING_POLICIES})")


class FrameSizeError(argparse.ArgumentTypeError, ValueError):
    """A frame size that is not WxH with 1 <= W, H <= MAX_FRAME_SIDE (argparse shows this message as is)."""


class UnscoredPredictionsWarning(UserWarning):
    """Predictions for videos or segments the benchmark does not have (they are not scored)."""


def parse_frame_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise FrameSizeError(f"frame size must look like 640x480, got {text!r}")
    return check_frame_size((int(w), int(h)), "--frame-size")


def check_frame_size(size: tuple[int, int], source: str) -> tuple[int, int]:
    """`size` (W, H) when both sides lie in 1..MAX_FRAME_SIDE; `source` names where it came from."""
    if not all(isinstance(v, numbers.Integral) and 1 <= v <= MAX_FRAME_SIDE for v in size):
        raise FrameSizeError(f"{source}: frame size {size[0]}x{size[1]} is out of bounds (each side 1.."
                             f"{MAX_FRAME_SIDE} pixels)")
    return size


def check_boxes(path, boxes: Iterable[tuple[str, int, tuple]]) -> None:
    """Refuse an annotated (video, second, box) whose box is not finite: its pixels would be garbage."""
    for vid, second, box in boxes:
        if not all(math.isfinite(v) for v in box):
            raise ScoreError(f"{path}: video {vid!r} second {second}: box {list(box)} is not finite")


def warn_unscored(path: str, what: str, items: Iterable[str]) -> list[str]:
    """Warn (UnscoredPredictionsWarning, printed by eval.score) about predicted items the benchmark lacks."""
    items = sorted(items)
    if items:
        shown = ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
        warnings.warn(UnscoredPredictionsWarning(f"{path}: {len(items)} {what} not in the benchmark, not "
                                                 f"scored: {shown}"), stacklevel=2)
    return items


@dataclass(frozen=True)
class FrameSizes:
    """Frame size per video: an explicit per-video table, else one size for every video."""

    table: dict[str, tuple[int, int]]
    default: tuple[int, int] | None
    source: str  # what was used, reported in the metrics

    def of(self, video_id: str) -> tuple[int, int]:
        if video_id in self.table:
            return self.table[video_id]
        if self.default is None:
            raise ScoreError(f"no frame size for video {video_id!r} in {self.source}")
        return self.default


def resolve_file(benchmark_dir: str | os.PathLike, subdir: str, name: str | os.PathLike) -> Path:
    """An annotation file given by name: an existing path as is, else DIR/<subdir>/<name>, else DIR/<name>."""
    candidates = [Path(name), Path(benchmark_dir) / subdir / name, Path(benchmark_dir) / name]
    for path in candidates:
        if path.is_file():
            return path
    raise ScoreError(f"annotation file {str(name)!r} not found (looked at {', '.join(map(str, candidates[1:]))})")


def frame_sizes(sizes_file: Path | None, frame_size: tuple[int, int] | None, default_size: tuple[int, int] | None,
                clamp: tuple[int, int] | None = None) -> FrameSizes:
    """Per-video frame sizes: one `frame_size` for all, else a sizes file, else `default_size` for all.
    `clamp` bounds width and height independently (the published YouCook2-Interactions script)."""
    if frame_size is not None:
        sizes = FrameSizes({}, frame_size, f"--frame-size {frame_size[0]}x{frame_size[1]}")
    elif sizes_file is not None:
        sizes = FrameSizes(load_sizes(sizes_file), None, str(sizes_file))  # JSON {vid: [W, H]}
    elif default_size is not None:
        sizes = FrameSizes({}, default_size, f"default {default_size[0]}x{default_size[1]} for every video")
    else:
        raise ScoreError("no frame sizes given")
    try:
        for vid, wh in sizes.table.items():
            check_frame_size(wh, f"{sizes.source} [{vid!r}]")
        if sizes.default is not None:
            check_frame_size(sizes.default, sizes.source)
    except FrameSizeError as exc:
        raise ScoreError(str(exc)) from None
    if clamp is None:
        return sizes
    cw, ch = clamp

    def bound(wh: tuple[int, int]) -> tuple[int, int]:
        return min(wh[0], cw), min(wh[1], ch)

    return FrameSizes({v: bound(wh) for v, wh in sizes.table.items()},
                      None if sizes.default is None else bound(sizes.default),
                      f"{sizes.source}, clamped to at most {cw}x{ch}")


def write_json(path: str | os.PathLike, metrics: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
