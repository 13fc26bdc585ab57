"""Build a manifest directory (see manifests.schema) from a source.

    python -m manifests.build folder VIDEO_DIR --out MANIFEST [--recursive] [--fps 1]
    python -m manifests.build howto100m NARRATIONS --video-dir DIR --out MANIFEST [--vocabulary-filter FILE]
    python -m manifests.build youcook2 ANNOTATIONS_JSON --subset training|validation --video-dir DIR --out MANIFEST
    python -m manifests.build gyt --benchmark-dir DIR [--segments-file FILE] --video-dir DIR --out MANIFEST
    python -m manifests.build yc-interactions --benchmark-dir DIR --video-dir DIR --out MANIFEST
    python -m manifests.build mining SRT_DIR --video-dir DIR --out MANIFEST
    python -m manifests.build activitynet val_1.json --video-dir DIR --out MANIFEST
    python -m manifests.build charades-sta charades_sta_test.txt --video-dir DIR --out MANIFEST
    python -m manifests.build didemo test_data.json --video-dir DIR --out MANIFEST

Evaluation sets (folder, youcook2 validation, gyt, yc-interactions, mining, activitynet, charades-sta, didemo)
default to whole videos at 1 fps; training sets (howto100m, youcook2 training) to caption windows (16 s centred
on each caption, 5 fps, merged where they overlap). `--segments whole|windows`, `--fps`, `--window`, `--anchor`,
`--no-merge` override.
Videos are looked up as `<video-dir>/<video_id>.<ext>`; one that is not there is still listed, with
`probe_error` "missing: <expected path>". Video ids must be safe names (no "..", absolute path or control
character: `manifests.integrity`), so every path stays inside `--video-dir`; ids, segment units and caption ids
must be unique, and numbers lie within the bounds of `manifests.integrity` (e.g. --fps in (0, 120]).
Exit status: 0 written, 2 bad input (the message names the file, and the row or key where it applies).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

from manifests import builders
from manifests.errors import AnnotationError, ManifestError
from manifests.integrity import PROBE_JOBS, SAMPLING_FPS, WINDOW_SECONDS, bounded_option
from manifests.schema import Manifest
from manifests.segments import (
    DEFAULT_EVAL_FPS, DEFAULT_TRAIN_FPS, DEFAULT_WINDOW, WindowSpec, whole_video_segments, window_segments,
)
from manifests.videos import probe_videos
from manifests.benchmarks.charades_sta import build_charades_sta
from manifests.benchmarks.didemo import build_didemo
from manifests.vocabulary import load_vocabulary


def _common_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", required=True, type=Path, help="manifest directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing manifest at --out")
    p.add_argument("--jobs", type=bounded_option(int, PROBE_JOBS), default=min(8, 2 * (os.cpu_count() or 1)),
                   help=f"parallel probes, in {PROBE_JOBS}")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--recursive", action="store_true", help="look for videos in subfolders too")
    p.add_argument("--dataset", help="dataset name stored with each video (default: the kind's name)")
    p.add_argument("--segments", choices=("whole", "windows"),
                   help="extraction units (default: whole for evaluation sets, windows for training sets)")
    p.add_argument("--fps", type=bounded_option(float, SAMPLING_FPS),
                   help=f"frames per second, in {SAMPLING_FPS} (default {DEFAULT_EVAL_FPS:g} for whole videos, "
                        f"{DEFAULT_TRAIN_FPS:g} for windows)")
    p.add_argument("--window", type=bounded_option(float, WINDOW_SECONDS), default=DEFAULT_WINDOW,
                   help=f"caption window length, seconds, in {WINDOW_SECONDS}")
    p.add_argument("--anchor", choices=("center", "start"), default="center",
                   help="centre windows on captions or start them at the caption start")
    p.add_argument("--no-merge", action="store_true", help="one segment per caption window (no merging)")
    return p


def make_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(prog="python -m manifests.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("folder", parents=[common], help="a folder of videos (whole videos)")
    p.add_argument("video_dir", type=Path)
    p = sub.add_parser("howto100m", parents=[common], help="HowTo100M / HowToCaption narrations")
    p.add_argument("narrations", type=Path, help="directory of <vid>.csv, caption.json or HowToCaption JSON")
    p.add_argument("--video-dir", type=Path, required=True)
    p.add_argument("--vocabulary-filter", type=Path, metavar="FILE",
                   help="keep only narrations holding a word (or phrase) of FILE, one per line (CoMMA's "
                        "YouCook2-vocabulary subset; tokenisation: manifests/vocabulary.py)")
    p = sub.add_parser("youcook2", parents=[common], help="YouCook2 annotation JSON")
    p.add_argument("annotations", type=Path, help="youcookii_annotations_trainval.json")
    p.add_argument("--subset", choices=("training", "validation"), default="validation")
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("gyt", parents=[common], help="GroundingYouTube")
    p.add_argument("--benchmark-dir", type=Path, required=True, help="holds box_anno.json, vid2step.json, ...")
    p.add_argument("--segments-file", choices=builders.GYT_SEGMENT_FILES, default=builders.GYT_SEGMENT_FILES[0])
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("yc-interactions", parents=[common], help="YouCook2-Interactions")
    p.add_argument("--benchmark-dir", type=Path, required=True,
                   help="holds final_dataset_segments.pkl, final_dataset_annotations.pkl, "
                        "youcookii_annotations_trainval.json")
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("mining", parents=[common], help="MiningYouTube .srt annotations")
    p.add_argument("srt_dir", type=Path)
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("activitynet", parents=[common], help="ActivityNet Captions JSON (val_1.json: COOT's val1)")
    p.add_argument("annotations", type=Path, help="val_1.json, val_2.json or train.json")
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("charades-sta", parents=[common], help="Charades-STA sentence annotations (vid start end##text)")
    p.add_argument("annotations", type=Path, help="charades_sta_test.txt or charades_sta_train.txt")
    p.add_argument("--video-dir", type=Path, required=True)
    p = sub.add_parser("didemo", parents=[common], help="DiDeMo annotation JSON (5-s segments, 21 moments)")
    p.add_argument("annotations", type=Path, help="test_data.json, val_data.json or train_data.json")
    p.add_argument("--video-dir", type=Path, required=True)
    return parser


def make_draft(args: argparse.Namespace) -> builders.Draft:
    named = {"recursive": args.recursive, **({"dataset": args.dataset} if args.dataset else {})}
    if args.kind == "folder":
        return builders.build_folder(args.video_dir, **named)
    if args.kind == "howto100m":
        # the vocabulary first: a bad file fails before thousands of narration files are read
        vocabulary = load_vocabulary(args.vocabulary_filter) if args.vocabulary_filter else None
        return builders.build_howto100m(args.narrations, args.video_dir, vocabulary=vocabulary, **named)
    if args.kind == "youcook2":
        return builders.build_youcook2(args.annotations, args.video_dir, subset=args.subset, **named)
    if args.kind == "gyt":
        return builders.build_gyt(args.benchmark_dir, args.video_dir, segments_file=args.segments_file, **named)
    if args.kind == "yc-interactions":
        return builders.build_yc_interactions(args.benchmark_dir, args.video_dir, **named)
    if args.kind == "activitynet":
        return builders.build_activitynet(args.annotations, args.video_dir, **named)
    if args.kind == "charades-sta":
        return build_charades_sta(args.annotations, args.video_dir, **named)
    if args.kind == "didemo":
        return build_didemo(args.annotations, args.video_dir, **named)
    return builders.build_mining(args.srt_dir, args.video_dir, **named)


def assemble(draft: builders.Draft, *, segments: str | None = None, fps: float | None = None,
             window: WindowSpec | None = None, jobs: int = 4, progress: bool = True, builder: str = "unknown",
             args: dict | None = None) -> Manifest:
    """Probe the draft's videos and lay out its segments and boxes into a Manifest."""
    builders.check_sources(draft.sources)  # before probing thousands of videos
    videos = probe_videos(draft.sources, jobs=jobs, progress=progress)
    mode = segments or ("whole" if draft.purpose == "eval" else "windows")
    if mode == "whole":
        segs = whole_video_segments([v.video_id for v in videos], fps or DEFAULT_EVAL_FPS, draft.purpose)
    else:
        spec = window or WindowSpec()
        if fps is not None:
            spec = WindowSpec(spec.window, fps, spec.anchor, spec.merge)
        segs = window_segments(draft.captions, {v.video_id: v.duration for v in videos}, spec, draft.purpose)
    boxes = draft.boxes({v.video_id: v for v in videos}) if draft.boxes else None
    return Manifest.from_rows(videos=videos, segments=segs, captions=draft.captions, boxes=boxes,
                              builder=builder, args=args or {})


def summary(manifest: Manifest, out: Path, notes: Sequence[str] = ()) -> str:
    """A one-screen account of what was written."""
    videos = manifest.video_rows()
    missing = [v for v in videos if v.probe_error and v.probe_error.startswith("missing:")]
    unreadable = [v for v in videos if v.probe_error and not v.probe_error.startswith("missing:")]
    captions = manifest.caption_rows()
    segments = manifest.segment_rows()
    kinds = Counter(c.kind for c in captions)
    seg_kinds = Counter((s.end is None, s.fps, s.purpose) for s in segments)
    lines = [f"manifest  {out}  (builder {manifest.builder})",
             f"videos    {len(videos)}: {len(videos) - len(missing) - len(unreadable)} probed ok, "
             f"{len(missing)} missing, {len(unreadable)} unreadable",
             f"captions  {len(captions)}" + (": " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                                             if kinds else ""),
             f"segments  {len(segments)}: " + ", ".join(
                 f"{n} {'whole videos' if whole else 'windows'} at {fps:g} fps ({purpose})"
                 for (whole, fps, purpose), n in sorted(seg_kinds.items())),
             f"boxes     {'none' if manifest.boxes is None else manifest.boxes.num_rows}"]
    inverted = sum(1 for c in captions if c.start is not None and c.end is not None and c.end < c.start)
    empty = sum(1 for c in captions if not c.text.strip())
    if inverted or empty:
        lines.append(f"warning   {inverted} captions end before they start, {empty} are empty "
                     "(kept as in the source)")
    lines += [f"unreadable {v.video_id}: {v.probe_error}" for v in unreadable[:5]]
    lines += [f"note      {n}" for n in notes]
    lines.append(f"check it  python -m manifests.validate {out}")
    return "\n".join(lines)


def _json_args(args: argparse.Namespace) -> dict:
    # absolute, so that manifests.validate can tell whether a video path lies inside --video-dir
    return {k: (str(v.absolute()) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    out = args.out.absolute()
    try:
        if out.exists() and not args.overwrite:  # fail before probing thousands of videos
            raise FileExistsError(f"{out}: already exists (use --overwrite to replace it)")
        spec = WindowSpec(args.window, args.fps or DEFAULT_TRAIN_FPS, args.anchor, not args.no_merge)
        draft = make_draft(args)
        manifest = assemble(draft, segments=args.segments, fps=args.fps, window=spec, jobs=args.jobs,
                            progress=not args.no_progress, builder=args.kind, args=_json_args(args))
        manifest.write(out, overwrite=args.overwrite)
    except (AnnotationError, ManifestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(manifest, out, draft.notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
