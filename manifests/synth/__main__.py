"""`python -m manifests.synth --out DIR [options]`: generate a synthetic narrated-video world.

Prints a one-screen summary; the last stdout line is one JSON object (counts, timings, paths). Exit 0 when
written, 2 on bad options or an output directory that cannot be used.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from manifests.errors import AnnotationError, ManifestError
from manifests.ffmpeg import FFmpegError
from manifests.segments import WindowSpec
from manifests.synth.config import WorldConfig, parse_range, parse_size
from manifests.synth.generate import generate

D = WorldConfig()


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m manifests.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output directory (see manifests.synth for the layout)")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--train-videos", type=int, default=D.train_videos)
    p.add_argument("--test-videos", type=int, default=D.test_videos)
    p.add_argument("--seconds", default="-".join(map(str, D.seconds)), help="video length or range, e.g. 40-60")
    p.add_argument("--size", default=f"{D.width}x{D.height}", help="frame size WxH (even numbers)")
    p.add_argument("--fps", type=int, default=D.fps, help="frames per second (whole number)")
    p.add_argument("--object-size", type=float, default=D.object_size, help="object diameter / short side")
    p.add_argument("--distractors", default="-".join(map(str, D.distractors)),
                   help="objects no step acts on, per video (number or range)")
    p.add_argument("--step-seconds", default="-".join(map(str, D.step_seconds)), help="action length range")
    p.add_argument("--min-gap", type=int, default=D.min_gap, help="shortest background stretch, seconds")
    p.add_argument("--skip-step", type=float, default=D.skip_step, help="chance a task step is skipped")
    p.add_argument("--idle-hands", type=float, default=D.idle_hands,
                   help="chance a background stretch shows a hand touching nothing")
    p.add_argument("--table-colours", type=int, default=D.table_colours,
                   help="table colours the videos draw from (default 1: one colour, each video its own grain)")
    p.add_argument("--no-crop-safe", action="store_true",
                   help="place objects anywhere (default: inside the centred square a centre crop keeps)")
    p.add_argument("--narration-bias", default=f"{D.narration_bias[0]}:{D.narration_bias[1]}",
                   help="per-video speech lag range in seconds, LO:HI; write --narration-bias=-1:2 when LO < 0")
    p.add_argument("--narration-jitter", type=float, default=D.narration_jitter)
    p.add_argument("--narration-drop", type=float, default=D.narration_drop)
    p.add_argument("--distractor-narrations", default="-".join(map(str, D.distractor_narrations)))
    p.add_argument("--train-window", type=float, default=WindowSpec.window,
                   help="training manifest: caption window length, seconds (default %(default)s)")
    p.add_argument("--train-fps", type=float, default=WindowSpec.fps,
                   help="training manifest: frames per second of the caption windows (default %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="videos encoded at once (default 2)")
    p.add_argument("--no-manifests", action="store_true", help="do not build the manifests")
    p.add_argument("--overwrite", action="store_true", help="replace a world generated before in --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> WorldConfig:
    width, height = parse_size(args.size)
    lo, sep, hi = args.narration_bias.partition(":")
    if not sep:
        raise ValueError(f"--narration-bias must look like -1:2, got {args.narration_bias!r}")
    return WorldConfig(
        seed=args.seed, train_videos=args.train_videos, test_videos=args.test_videos,
        seconds=parse_range(args.seconds), width=width, height=height, fps=args.fps, object_size=args.object_size,
        distractors=parse_range(args.distractors), step_seconds=parse_range(args.step_seconds),
        min_gap=args.min_gap, skip_step=args.skip_step, idle_hands=args.idle_hands, crop_safe=not args.no_crop_safe,
        table_colours=args.table_colours,
        narration_bias=(float(lo), float(hi)), narration_jitter=args.narration_jitter,
        narration_drop=args.narration_drop, distractor_narrations=parse_range(args.distractor_narrations))


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        windows = WindowSpec(window=args.train_window, fps=args.train_fps)
        report = generate(args.out, config, jobs=args.jobs, manifests=not args.no_manifests, train_windows=windows,
                          overwrite=args.overwrite, progress=not args.no_progress)
    except (ValueError, OSError, AnnotationError, ManifestError, FFmpegError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(json.dumps(report.as_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
