"""Score a predictions file against a benchmark's annotations (no model, no video).

    python -m eval.score {gyt,gyt-spatial,youcook,mining,gyt-clips} --predictions P --benchmark-dir DIR
        [--protocol paper|reference] [--out metrics.json] [--missing fail|miss] [task options] [key=value ...]
    python -m eval.score moments --predictions P --benchmark-dir DIR --benchmark gyt|youcook2|mining
        [--annotations F] [--subset validation] [--ranks 1,5] [--ious 0.3,0.5,0.7] [common options] [key=value ...]
    python -m eval.score retrieval --predictions P [--benchmark-dir DIR --benchmark gyt|youcook2|mining]
        [--annotations F] [--subset validation] [common options] [key=value ...]

Prints a table of the scalar metrics; the last stdout line is the whole metrics JSON object (per-class and
per-video breakdowns included). Accuracies are percent, IoU and AP fractions. DIR holds the annotation files
(either the benchmarks root with groundingyoutube/, youcook2_interactions/, miningyoutube/, or the benchmark's
own folder); file options take a name inside it or a path. A benchmark video (or segment) absent from the
predictions fails the run, or with `--missing miss` is scored as a miss; it always stays in the denominators.

Each task's settings are the fields of its scorer's config (eval.scorers.SCORERS): defaults, then the flags
given, then trailing `key=value` overrides (e.g. `mask_threshold=0.02`, `length_fps=25`), typed by
pipeline.config. An unknown key, a bad value, or a flag the task does not use is an error.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from eval.predictions import PredictionsError, read_predictions
from eval.scorers import SCORERS
from eval.scorers.common import MISSING_POLICIES, ScoreError, UnscoredPredictionsWarning, parse_frame_size, write_json
from eval.scorers.timed_queries import BENCHMARKS
from eval.tasks import DESCRIPTIONS
from manifests.errors import AnnotationError
from pipeline.config import ConfigError, load_config, parse_override, valid_keys

# Settings whose flags take a fixed set of values; the same sets bound their key=value overrides.
CHOICES = {"protocol": ("paper", "reference"), "missing": MISSING_POLICIES, "mask_normalise": ("max", "none"),
           "tube_iou": ("voxel", "act"), "benchmark": BENCHMARKS}
COMMAND_ONLY = ("task", "predictions", "out", "overrides")  # arguments that are not scorer settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.score", description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=tuple(SCORERS), help="; ".join(f"{t}: {DESCRIPTIONS[t]}" for t in SCORERS))
    p.add_argument("--predictions", required=True, type=Path,
                   help="predictions file (.h5, see eval/predictions/format.py)")
    p.add_argument("--benchmark-dir", type=Path, help="folder holding the annotation files (every task but "
                                                      "retrieval without --benchmark)")
    p.add_argument("--protocol", default="paper", choices=CHOICES["protocol"],
                   help="paper: documented definitions (default); reference: the published scripts, quirks included")
    p.add_argument("--out", type=Path, help="also write the metrics JSON here")
    p.add_argument("--missing", default="fail", choices=CHOICES["missing"],
                   help="a benchmark video/segment without predictions: fail (default) or score it as a miss")
    # The flags below default to None: left out, the scorer config's own default applies (the value in the help).
    g = p.add_argument_group("gyt, gyt-spatial, youcook, gyt-clips (foreground threshold: threshold=T, default "
                             "each clip group's own)")
    g.add_argument("--boxes", help="boxes file (gyt: box_anno.json; gyt-spatial: box_anno.json, reference "
                                   "id2xy_box.json; youcook: final_dataset_annotations.pkl)")
    g.add_argument("--segments", help="segments file (gyt: ground_seg_3to20.json; gyt-spatial: 'from-boxes', "
                                      "reference seg.json; youcook: final_dataset_segments.pkl)")
    g.add_argument("--sizes", help="JSON {video_id: [W, H]} frame sizes (gyt default id2wh_new.json; youcook "
                                   "default 640x360 for every video)")
    g.add_argument("--frame-size", type=parse_frame_size, help="one WxH for every video, e.g. 640x480")
    g.add_argument("--mask-threshold", type=_one_or_list(float),
                   help="region mask threshold (paper 0.01, reference 1e-4); gyt: a list (0.001,0.01,0.1) scores "
                        "every threshold in one pass, a row each in `thresholds`")
    g.add_argument("--mask-normalise", type=_one_or_list(str),
                   help="max: threshold maps divided by their maximum (paper); none: raw values (reference); "
                        "gyt: max,none sweeps both scales")
    g.add_argument("--tube-iou", choices=CHOICES["tube_iou"],
                   help="gyt, gyt-clips: tube IoU behind the main map@t keys (both are reported)")
    g.add_argument("--pools", help="gyt: per-video label pools; a label outside its video's pool is refused")
    g.add_argument("--area-split", type=int, help="gyt: widespread tubes have a mean box area above this many "
                                                  "pixels, the others are saturated (60000; 0: no split)")
    m = p.add_argument_group("mining")
    m.add_argument("--lengths", help="mean class lengths (frames)")
    m.add_argument("--classes", help="class names of the lengths file")
    m.add_argument("--temperature", type=float, help="scores are divided by it before log-softmax")
    r = p.add_argument_group("moments, retrieval")
    r.add_argument("--benchmark", choices=CHOICES["benchmark"], help="the timed queries (moments: required; "
                                                                     "retrieval: the expected items)")
    r.add_argument("--annotations", help="segments file or .srt directory (default: the benchmark's own)")
    r.add_argument("--subset", help="youcook2 subset")
    r.add_argument("--ranks", type=_numbers(int), help="moments: R@n for these n (1,5); retrieval: its cutoffs "
                   "(1,5,10; activitynet 1,5,50)")
    r.add_argument("--ious", type=_numbers(float), help="moments: IoU thresholds")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="settings of the task's scorer config (eval/scorers/), after the flags, e.g. "
                        "mask_threshold=0.02")
    return p


def _one_or_list(kind):
    """'a' -> kind(a); 'a,b' -> (kind(a), kind(b)): a list of values to sweep (the scorer checks it applies)."""
    def parse(text: str):
        try:
            values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a value or a comma-separated list, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected a value or a comma-separated list, got {text!r}")
        return values[0] if len(values) == 1 and "," not in text else values
    return parse


def _numbers(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return parse


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def scorer_config(args: argparse.Namespace):
    """The task's scorer config: its defaults <- the flags given <- the key=value overrides."""
    scorer = SCORERS[args.task]
    keys = valid_keys(scorer.config)
    given = {k: v for k, v in vars(args).items() if k not in COMMAND_ONLY and v is not None}
    foreign = [k for k in given if k not in keys]
    if foreign:
        raise ConfigError(f"{_flag(foreign[0])} does not apply to {args.task} (its settings: {', '.join(keys)})")
    overridden = {parse_override(text)[0][0] for text in args.overrides}
    if any(k not in given and k not in overridden for k in scorer.required):
        raise ScoreError(f"{args.task} needs {' and '.join(map(_flag, scorer.required))}")
    base = {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}  # paths are str fields
    cfg = load_config(scorer.config, overrides=args.overrides, base=base)
    for key, choices in CHOICES.items():
        value = getattr(cfg, key, None)
        for item in value if isinstance(value, tuple) else (value,):  # a list to sweep (mask_normalise)
            if item is not None and item not in choices:
                raise ConfigError(f"{key}: {item!r} is not one of {list(choices)}")
    return cfg


def run(args: argparse.Namespace) -> dict:
    cfg = scorer_config(args)
    preds = read_predictions(args.predictions)
    metrics = SCORERS[args.task].score(cfg, preds)
    metrics.update(predictions=str(args.predictions), method=preds.meta.method,
                   predictions_protocol=preds.meta.protocol)
    return metrics


def _text(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def _is_rows(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def table(metrics: dict) -> str:
    """Scalar metrics one per line; lists (missing videos, ...) as their length; breakdowns only in the JSON. A
    list of rows (gyt's `thresholds`, `area_groups`) follows as its own table: its scalar columns, a line each."""
    rows = [(k, v) for k, v in sorted(metrics.items()) if not isinstance(v, dict) and not _is_rows(v)]
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        if isinstance(value, list):
            text = f"{len(value)}" + (f" ({', '.join(map(str, value[:5]))}{', ...' if len(value) > 5 else ''})"
                                      if value else "")
        else:
            text = _text(value)
        lines.append(f"{key:<{width}}  {text}")
    for key, value in metrics.items():
        if _is_rows(value):
            columns = [c for c in value[0] if not isinstance(value[0][c], (dict, list))]
            cells = [columns] + [[str(row.get(c)) if c == "mask_threshold" else _text(row.get(c)) for c in columns]
                                 for row in value]
            sizes = [max(len(r[i]) for r in cells) for i in range(len(columns))]
            lines += ["", f"{key}:"] + ["  ".join(f"{c:>{n}}" for c, n in zip(r, sizes)) for r in cells]
    return "\n".join(lines)


def run_warned(args: argparse.Namespace) -> dict:
    """`run`, with each UnscoredPredictionsWarning printed as one `warning:` line on stderr (others pass on)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnscoredPredictionsWarning)
            return run(args)
    finally:  # outside the catching context: other warnings are shown as usual
        for w in caught:
            if issubclass(w.category, UnscoredPredictionsWarning):
                print(f"warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    try:
        metrics = run_warned(args)
    except (ScoreError, PredictionsError, AnnotationError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_json(args.out, metrics)
    print(table(metrics))
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
