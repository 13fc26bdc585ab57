"""Annotation-only baselines, written as predictions files and scored by the same scorers.

    python -m eval.baselines {centre,uniform} --benchmark {gyt,youcook,mining} --benchmark-dir DIR --out P
        [--protocol paper|reference] [--boxes F --segments F] [--sizes F | --frame-size WxH] [--grid 7]

- centre (gyt, youcook): the centre pixel (W/2, H/2) of every frame as a /points prediction (CoMMA's centre
  prior: "we return the center pixel for each frame"); a point has no region, so region metrics are null. This is
  the prior of the published annotation-only figures (67.15 % on GYT at 640x480, 28.85 % on YC-Inter).
- centre-cell (gyt, youcook): a --grid x --grid heatmap (default 7, the model's resolution) peaked at its centre
  cell, as a /spatial prediction: what a model that always attends the centre would score. Upsampled, its first
  maximum is not the centre pixel (e.g. (320, 239) at 640x480), and its mask gives region metrics.
- uniform (gyt, youcook): a point drawn uniformly from the frame, written as a /points group with
  distribution="uniform": the scorer uses its expected value (the share of the frame inside the box), not a
  sample; its region is the whole frame.
- uniform (mining): equal scores for every label, so the alignment follows the transcript and the length model
  alone. The centre prior is spatial and has no mining counterpart.

`--benchmark gyt` is the GroundingYouTube spatial-grounding task (ground-truth segments given; scored by
`python -m eval.score gyt-spatial`). The untrimmed task needs temporal predictions, which no annotation-only
prior provides. The queries come from the scorers' own query plans, so the file answers exactly what the
scorer asks for the same files and protocol.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter
from eval.scorers import gyt_spatial, mining, youcook
from eval.scorers.common import FrameSizes, parse_frame_size
from eval.scorers.spatial import SpatialQuery

BASELINES = ("centre", "centre-cell", "uniform")
BENCHMARKS = ("gyt", "youcook", "mining")


def centre_cell_heatmap(grid: int) -> np.ndarray:
    """A grid x grid map with 1 at the centre cell (row and column grid // 2) and 0 elsewhere."""
    heatmap = np.zeros((grid, grid), np.float32)
    heatmap[grid // 2, grid // 2] = 1.0
    return heatmap


def write_spatial_prior(out: Path, kind: str, task: str, protocol: str, queries: list[SpatialQuery],
                        sizes: FrameSizes, metadata: dict, grid: int = 7) -> None:
    meta = PredictionsMeta(task, f"{kind}-prior", protocol, metadata)
    with PredictionsWriter(out, meta) as writer:
        for q in queries:
            n = q.end - q.start + 1
            if kind == "uniform":
                writer.add_points(q.video_id, q.segment_id, q.start, q.end, q.query, uniform=True)
                continue
            if kind == "centre-cell":
                maps = np.repeat(centre_cell_heatmap(grid)[None], n, axis=0)
                writer.add_spatial(q.video_id, q.segment_id, q.start, q.end, q.query, maps)
                continue
            width, height = sizes.of(q.video_id)
            points = np.tile(np.array([[width / 2, height / 2]], np.float32), (n, 1))
            writer.add_points(q.video_id, q.segment_id, q.start, q.end, q.query, points=points)


def write_mining_uniform(out: Path, cfg: mining.MiningConfig, protocol: str) -> None:
    videos = mining.load_srt_dir(mining.annotation_dir(cfg))
    meta = PredictionsMeta("mining", "uniform-prior", protocol, {"annotations": str(mining.annotation_dir(cfg))})
    with PredictionsWriter(out, meta) as writer:
        for vid, segments in videos.items():
            labels = sorted({s.label for s in segments} | {BACKGROUND})
            scores = np.zeros((mining.annotated_length(segments), len(labels)), np.float32)
            writer.add_temporal(vid, labels, scores)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.baselines", description=__doc__.split("\n\n")[0])
    p.add_argument("baseline", choices=BASELINES)
    p.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    p.add_argument("--benchmark-dir", required=True, type=Path, help="folder holding the annotation files")
    p.add_argument("--out", required=True, type=Path, help="predictions file to write (.h5)")
    p.add_argument("--protocol", default="paper", choices=("paper", "reference"),
                   help="which scorer protocol the file is for (it decides the default annotation files)")
    p.add_argument("--boxes", help="gyt boxes file (default: box_anno.json, reference: id2xy_box.json)")
    p.add_argument("--segments", help="gyt segments file or 'from-boxes' (default: from-boxes, reference: seg.json)")
    p.add_argument("--sizes", help="JSON {video_id: [W, H]} (gyt default id2wh_new.json; youcook default 640x360)")
    p.add_argument("--frame-size", type=parse_frame_size, help="one WxH for every video, e.g. 640x480")
    p.add_argument("--grid", type=int, default=7, help="heatmap size of centre-cell (default 7)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.benchmark == "mining":
        if args.baseline != "uniform":
            print("the centre priors are spatial; MiningYouTube is temporal: use 'uniform'", file=sys.stderr)
            return 2
        write_mining_uniform(args.out, mining.MiningConfig(args.benchmark_dir, args.protocol), args.protocol)
    elif args.benchmark == "gyt":
        cfg = gyt_spatial.GytSpatialConfig(args.benchmark_dir, args.protocol, args.boxes, args.segments,
                                           args.sizes, args.frame_size)
        plan, info = gyt_spatial.query_plan(cfg)
        write_spatial_prior(args.out, args.baseline, "gyt-spatial", args.protocol, [q for q, _ in plan],
                            gyt_spatial.sizes_for(cfg), info, args.grid)
    else:
        cfg = youcook.YouCookConfig(args.benchmark_dir, args.protocol, sizes=args.sizes, frame_size=args.frame_size)
        plan, info = youcook.query_plan(cfg)
        write_spatial_prior(args.out, args.baseline, "youcook", args.protocol, [q for q, _ in plan],
                            youcook.sizes_for(cfg), info, args.grid)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
