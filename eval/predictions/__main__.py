"""Predictions files from other methods' outputs.

    python -m eval.predictions from-boxes --task {gyt,gyt-spatial,youcook} --boxes DETS.json --benchmark-dir DIR
        --out P [--protocol paper|reference] [--layout runs|coverage] [--min-score S] [--method NAME]
        [--gt-boxes F] [--segments F] [--pools F] [--sizes F | --frame-size WxH]
    python -m eval.predictions merge --temporal A.h5 --spatial B.h5 --out C.h5 [--method NAME]

from-boxes: a detector's boxes (GLIP, RegionCLIP per frame; TubeDETR, STCAT tubes) in the JSON documented in
eval/predictions/from_boxes.py -> the predictions file the task's scorer reads. merge: A's gyt temporal
predictions with B's spatial maps for the tubes they imply (eval/predictions/merge.py), e.g. MIL-NCE(temp.) +
RegionCLIP(spa.). Each prints counts, `warning:` lines on stderr (detections that answer no query), then
`wrote P`. Exit 0 done, 2 bad input (one `error:` line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.predictions.format import PROTOCOLS, PredictionsError
from eval.predictions.from_boxes import LAYOUTS, TASKS, FromBoxesError, Options, convert
from eval.predictions.merge import MergeError, merge
from eval.scorers.common import ScoreError, parse_frame_size
from manifests.errors import AnnotationError

ERRORS = (FromBoxesError, MergeError, PredictionsError, ScoreError, AnnotationError, OSError)  # OSError: --out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.predictions", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("from-boxes", help="a detector's boxes (JSON) -> a predictions file")
    f.add_argument("--task", required=True, choices=TASKS)
    f.add_argument("--boxes", required=True, type=Path, help="the detections JSON (eval/predictions/from_boxes.py)")
    f.add_argument("--benchmark-dir", required=True, type=Path, help="folder holding the annotation files")
    f.add_argument("--out", required=True, type=Path, help="predictions file to write (.h5)")
    f.add_argument("--protocol", default="paper", choices=PROTOCOLS,
                   help="the scorer protocol the file is for (it decides the default annotation files)")
    f.add_argument("--layout", default="runs", choices=LAYOUTS,
                   help="gyt: runs = one tube per run of a predicted label (the paper's inference); coverage = one "
                        "group per label over every second (the spatial input of merge)")
    f.add_argument("--min-score", type=float, help="drop detections scoring below this (default: keep all)")
    f.add_argument("--method", help="the file's method name (default: the JSON's 'method', else 'detector')")
    f.add_argument("--gt-boxes", help="annotation boxes file (the scorer's --boxes; default per task and protocol)")
    f.add_argument("--segments", help="annotation segments file (the scorer's --segments)")
    f.add_argument("--pools", default="vid2step.json", help="gyt: per-video label pools (default vid2step.json)")
    f.add_argument("--sizes", help="JSON {video_id: [W, H]} frame sizes, as the scorer's --sizes")
    f.add_argument("--frame-size", type=parse_frame_size, help="one WxH for every video, e.g. 640x480")
    m = sub.add_parser("merge", help="gyt: A's temporal predictions with B's spatial maps for A's tubes")
    m.add_argument("--temporal", required=True, type=Path, help="A: the gyt file whose /temporal is kept")
    m.add_argument("--spatial", required=True, type=Path, help="B: groups covering every tube of A (by label)")
    m.add_argument("--out", required=True, type=Path, help="predictions file to write (.h5)")
    m.add_argument("--method", help="the file's method name (default 'A(temp.)+B(spa.)')")
    return p


def _print_summary(summary: dict) -> None:
    unused = summary.pop("unused", [])
    for key, value in summary.items():
        if isinstance(value, list):
            value = f"{len(value)}" + (f" ({', '.join(map(str, value[:5]))}{', ...' if len(value) > 5 else ''})"
                                       if value else "")
        print(f"{key}  {value}")
    if unused:
        shown = ", ".join(unused[:5]) + (", ..." if len(unused) > 5 else "")
        print(f"warning: {len(unused)} detection(s) answer no query the file holds (video/query/second; check "
              f"the query spelling and video ids): {shown}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "merge":
            summary = merge(args.temporal, args.spatial, args.out, args.method)
        else:
            summary = convert(Options(args.task, str(args.boxes), str(args.benchmark_dir), args.out, args.protocol,
                                      args.layout, args.min_score, args.method, args.gt_boxes, args.segments,
                                      args.pools, args.sizes, args.frame_size))
    except ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(summary)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
