"""Score a predictions file against a benchmark's annotations (no model, no video).

    python -m eval.score {gyt,gyt-spatial,youcook,mining} --predictions P --benchmark-dir DIR
        [--protocol paper|reference] [--out metrics.json] [--missing fail|miss] [task options]
    python -m eval.score moments --predictions P --benchmark-dir DIR --benchmark gyt|youcook2|mining
        [--annotations F] [--subset validation] [--ranks 1,5] [--ious 0.3,0.5,0.7] [common options]
    python -m eval.score retrieval --predictions P [--benchmark-dir DIR --benchmark gyt|youcook2|mining]
        [--annotations F] [--subset validation] [common options]

Prints a table of the scalar metrics; the last stdout line is the whole metrics JSON object (per-class and
per-video breakdowns included). Accuracies are percent, IoU and AP fractions. DIR holds the annotation files
(either the benchmarks root with groundingyoutube/, youcook2_interactions/, miningyoutube/, or the benchmark's
own folder); file options take a name inside it or a path. A benchmark video (or segment) absent from the
predictions fails the run, or with `--missing miss` is scored as a miss; it always stays in the denominators.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from eval.predictions import PredictionsError, read_predictions
from eval.scorers import gyt, gyt_spatial, mining, moments, retrieval, youcook
from eval.scorers.common import (
    MISSING_POLICIES, ScoreError, UnscoredPredictionsWarning, parse_frame_size, write_json,
)
from eval.scorers.timed_queries import BENCHMARKS
from manifests.errors import AnnotationError

TASKS = ("gyt", "gyt-spatial", "youcook", "mining", "moments", "retrieval")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.score", description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=TASKS)
    p.add_argument("--predictions", required=True, type=Path, help="predictions file (.h5, see eval/predictions.py)")
    p.add_argument("--benchmark-dir", type=Path, help="folder holding the annotation files (every task but "
                                                      "retrieval without --benchmark)")
    p.add_argument("--protocol", default="paper", choices=("paper", "reference"),
                   help="paper: documented definitions (default); reference: the published scripts, quirks included")
    p.add_argument("--out", type=Path, help="also write the metrics JSON here")
    p.add_argument("--missing", default="fail", choices=MISSING_POLICIES,
                   help="a benchmark video/segment without predictions: fail (default) or score it as a miss")
    g = p.add_argument_group("gyt, gyt-spatial, youcook")
    g.add_argument("--boxes", help="boxes file (gyt: box_anno.json; gyt-spatial: box_anno.json, reference "
                                   "id2xy_box.json; youcook: final_dataset_annotations.pkl)")
    g.add_argument("--segments", help="segments file (gyt: ground_seg_3to20.json; gyt-spatial: 'from-boxes', "
                                      "reference seg.json; youcook: final_dataset_segments.pkl)")
    g.add_argument("--sizes", help="JSON {video_id: [W, H]} frame sizes (gyt default id2wh_new.json; youcook "
                                   "default 640x360 for every video)")
    g.add_argument("--frame-size", type=parse_frame_size, help="one WxH for every video, e.g. 640x480")
    g.add_argument("--mask-threshold", type=float, help="region mask threshold (paper 0.01, reference 1e-4)")
    g.add_argument("--mask-normalise", choices=("max", "none"),
                   help="threshold maps divided by their maximum (paper) or raw values (reference)")
    g.add_argument("--tube-iou", default="voxel", choices=("voxel", "act"),
                   help="gyt: tube IoU behind the main map@t keys (both are reported)")
    g.add_argument("--pools", default="vid2step.json",
                   help="gyt: per-video label pools; a label outside its video's pool is refused")
    m = p.add_argument_group("mining")
    m.add_argument("--lengths", default="weakYouTube_length.txt", help="mean class lengths (frames)")
    m.add_argument("--classes", default="weakYouTube_dict.txt", help="class names of the lengths file")
    m.add_argument("--temperature", type=float, default=1.0, help="scores are divided by it before log-softmax")
    r = p.add_argument_group("moments, retrieval")
    r.add_argument("--benchmark", choices=BENCHMARKS, help="the timed queries (moments: required; retrieval: the "
                                                           "expected items)")
    r.add_argument("--annotations", help="segments file or .srt directory (default: the benchmark's own)")
    r.add_argument("--subset", default="validation", help="youcook2 subset")
    r.add_argument("--ranks", type=_numbers(int), default=(1, 5), help="moments: R@n for these n (1,5)")
    r.add_argument("--ious", type=_numbers(float), default=(0.3, 0.5, 0.7), help="moments: IoU thresholds")
    return p


def _numbers(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return parse


def _ranked(args: argparse.Namespace, preds) -> dict:
    """The moments and retrieval tasks."""
    files = {"annotations": args.annotations, "subset": args.subset, "protocol": args.protocol,
             "missing": args.missing}
    if args.task == "moments":
        if args.benchmark is None or args.benchmark_dir is None:
            raise ScoreError("moments needs --benchmark and --benchmark-dir")
        return moments.score(moments.MomentsConfig(args.benchmark_dir, args.benchmark, ranks=args.ranks,
                                                   ious=args.ious, **files), preds)
    return retrieval.score(retrieval.RetrievalConfig(args.benchmark_dir, args.benchmark, **files), preds)


def run(args: argparse.Namespace) -> dict:
    preds = read_predictions(args.predictions)
    if args.task in ("moments", "retrieval"):
        metrics = _ranked(args, preds)
        metrics.update(predictions=str(args.predictions), method=preds.meta.method,
                       predictions_protocol=preds.meta.protocol)
        return metrics
    if args.benchmark_dir is None:
        raise ScoreError(f"{args.task} needs --benchmark-dir")
    common = {"benchmark_dir": args.benchmark_dir, "protocol": args.protocol, "missing": args.missing}
    spatial = {"sizes": args.sizes, "frame_size": args.frame_size, "mask_threshold": args.mask_threshold,
               "mask_normalise": args.mask_normalise}
    files = {k: v for k, v in (("boxes", args.boxes), ("segments", args.segments)) if v is not None}
    if args.task == "gyt":
        metrics = gyt.score(gyt.GytConfig(**common, **spatial, **files, tube_iou=args.tube_iou, pools=args.pools),
                            preds)
    elif args.task == "gyt-spatial":
        metrics = gyt_spatial.score(gyt_spatial.GytSpatialConfig(**common, **spatial, **files), preds)
    elif args.task == "youcook":
        metrics = youcook.score(youcook.YouCookConfig(**common, **spatial, **files), preds)
    else:
        metrics = mining.score(mining.MiningConfig(**common, lengths=args.lengths, classes=args.classes,
                                                   temperature=args.temperature), preds)
    metrics.update(predictions=str(args.predictions), method=preds.meta.method,
                   predictions_protocol=preds.meta.protocol)
    return metrics


def table(metrics: dict) -> str:
    """Scalar metrics one per line; lists (missing videos, ...) as their length; breakdowns only in the JSON."""
    rows = [(k, v) for k, v in sorted(metrics.items()) if not isinstance(v, dict)]
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        if isinstance(value, list):
            text = f"{len(value)}" + (f" ({', '.join(map(str, value[:5]))}{', ...' if len(value) > 5 else ''})"
                                      if value else "")
        else:
            text = f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{key:<{width}}  {text}")
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
    args = _parser().parse_args(argv)
    try:
        metrics = run_warned(args)
    except (ScoreError, PredictionsError, AnnotationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_json(args.out, metrics)
    print(table(metrics))
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
