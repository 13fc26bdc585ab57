"""Baselines, written as predictions files and scored by the same scorers: annotation-only priors, and the
similarity of the frozen features (no trained head).

    python -m eval.baselines {centre,centre-cell,uniform} --task {gyt-spatial,youcook,mining} --benchmark-dir DIR
        --out P [--protocol paper|reference] [--boxes F --segments F] [--sizes F | --frame-size WxH] [--grid 7]
    python -m eval.baselines global-sim --task {gyt,gyt-spatial,youcook,mining} --store STORE --benchmark-dir DIR
        --out P [--encoder clip|s3d] [--protocol ...] [--missing fail|miss] [--mask-rule protocol|cosine-0.5]
        [eval.infer's encoder options] [key=value ...]

`--task` takes the scorer's task names; the older `--benchmark {gyt,youcook,mining}` still works, with `gyt`
meaning gyt-spatial.

- centre (gyt-spatial, youcook): the centre pixel (W/2, H/2) of every frame as a /points prediction (CoMMA's centre
  prior: "we return the center pixel for each frame"); a point has no region, so region metrics are null. This is
  the prior of the published annotation-only figures (67.15 % on GYT at 640x480, 28.85 % on YC-Inter).
- centre-cell (gyt-spatial, youcook): a --grid x --grid heatmap (default 7, the model's resolution) peaked at its centre
  cell, as a /spatial prediction: what a model that always attends the centre would score. Upsampled, its first
  maximum is not the centre pixel (e.g. (320, 239) at 640x480), and its mask gives region metrics.
- uniform (gyt-spatial, youcook): a point drawn uniformly from the frame, written as a /points group with
  distribution="uniform": the scorer uses its expected value (the share of the frame inside the box), not a
  sample; its region is the whole frame.
- uniform (mining): equal scores for every label, so the alignment follows the transcript and the length model
  alone. The centre prior is spatial and has no mining counterpart.
- global-sim (every task; the paper's CLIP and MIL-NCE baselines, appendix 8.3): the inference of
  eval.infer with the frozen features in place of a head (eval.inference.grounders.FrozenGrounder): per second
  the cosine of the frame's global feature with each label's sentence feature gives the temporal scores
  (mapped and thresholded as for a head, `temporal.*`), and per grid cell the cosine of the cell's token with
  the query's sentence feature gives the heatmaps (frame-query and region-query similarity). Label and query
  texts are encoded by the store's encoder, rebuilt from its spec. CLIP features share one space; S3D's go
  through MIL-NCE's own projections. `--mask-rule` names how the scorer makes region masks of these maps:
  `protocol` (default) leaves it to the scorer's protocol (paper: max-normalised >= 0.01); `cosine-0.5` is the
  paper's rule for these baselines (appendix 8.3: "normalize the sentence and region features, then select a
  spatial threshold 0.5"): a pixel is in the mask when its cosine is >= 0.5. The name is recorded in the file's
  metadata (`"mask_rule": {"name": "cosine-0.5", ...}`) and the gyt, gyt-spatial and youcook scorers apply it by
  themselves (`eval.scorers.common.NAMED_MASK_RULES`; an explicit `--mask-threshold`/`--mask-normalise` still
  wins, with a warning).

The untrimmed GroundingYouTube task (`gyt`) needs temporal predictions, which no annotation-only prior
provides. The queries come from the scorers' own query plans, so the file answers exactly what the scorer asks
for the same files and protocol.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from eval.infer import USER_ERRORS, add_session_args, config_from_args, encoder_options, report
from eval.inference.session import frozen_session
from eval.inference.tasks import Benchmark, run_inference
from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter
from eval.scorers import gyt_spatial, mining, youcook, youcook_bb
from eval.scorers.common import NAMED_MASK_RULES, FrameSizes, parse_frame_size
from eval.scorers.spatial import SpatialQuery
from eval.tasks import GROUNDING_TASKS
from pipeline.config import to_dict
from pipeline.provenance import git_revision

PRIORS = ("centre", "centre-cell", "uniform")
BASELINES = (*PRIORS, "global-sim")
BENCHMARKS = ("gyt", "youcook", "mining")  # legacy --benchmark names: gyt = gyt-spatial
MASK_RULES = ("protocol", *NAMED_MASK_RULES)  # global-sim --mask-rule: the scorer's protocol, or a named rule
# the scorers that apply a rule recorded in the predictions' metadata
MASK_RULE_TASKS = ("gyt", "gyt-spatial", "youcook")


class BaselineError(ValueError):
    """A baseline asked for something it cannot give (the message says what to use instead)."""


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
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", choices=GROUNDING_TASKS, help="the scorer task the file is for")
    which.add_argument("--benchmark", choices=BENCHMARKS, help="older spelling of --task (gyt = gyt-spatial)")
    p.add_argument("--benchmark-dir", required=True, type=Path, help="folder holding the annotation files")
    p.add_argument("--out", required=True, type=Path, help="predictions file to write (.h5)")
    p.add_argument("--protocol", default="paper", choices=("paper", "reference"),
                   help="which scorer protocol the file is for (it decides the default annotation files)")
    p.add_argument("--boxes", help="gyt boxes file (default: box_anno.json, reference: id2xy_box.json)")
    p.add_argument("--segments", help="gyt segments file or 'from-boxes' (default: from-boxes, reference: seg.json)")
    p.add_argument("--sizes", help="JSON {video_id: [W, H]} (gyt default id2wh_new.json; youcook default 640x360)")
    p.add_argument("--frame-size", type=parse_frame_size, help="one WxH for every video, e.g. 640x480")
    p.add_argument("--grid", type=_grid_size, default=7, help="heatmap size of centre-cell (default 7)")
    p.add_argument("--encoder", default="clip", choices=("clip", "s3d"), help="global-sim: store features to compare")
    p.add_argument("--mask-rule", default="protocol", choices=MASK_RULES,
                   help="global-sim: region masks of the cosine maps, recorded for the scorer: protocol (the "
                        "scorer's default) or cosine-0.5 (the paper's rule for these baselines)")
    add_session_args(p, store_required=False)  # global-sim: the store, inference preset and text encoder
    return p


def _grid_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:  # a heatmap needs cells; 64 is far above any model's
        raise argparse.ArgumentTypeError(f"--grid must be a whole number in 1..64, got {text!r}")
    return int(text)


def write_prior(args: argparse.Namespace, task: str) -> None:
    if task == "mining":
        if args.baseline != "uniform":
            raise BaselineError("the centre priors are spatial; MiningYouTube is temporal: use 'uniform'")
        write_mining_uniform(args.out, mining.MiningConfig(args.benchmark_dir, args.protocol), args.protocol)
    elif task in ("gyt", "gyt-clips"):
        raise BaselineError(f"the {task} task needs temporal predictions, which no annotation-only prior gives: "
                            "use --task gyt-spatial, or the global-sim baseline")
    elif task == "gyt-spatial":
        cfg = gyt_spatial.GytSpatialConfig(args.benchmark_dir, args.protocol, args.boxes, args.segments,
                                           args.sizes, args.frame_size)
        plan, info = gyt_spatial.query_plan(cfg)
        write_spatial_prior(args.out, args.baseline, "gyt-spatial", args.protocol, [q for q, _ in plan],
                            gyt_spatial.sizes_for(cfg), info, args.grid)
    elif task == "youcook-bb":
        cfg = youcook_bb.YouCookBBConfig(args.benchmark_dir, args.protocol, frame_size=args.frame_size,
                                         **{k: v for k, v in (("boxes", args.boxes), ("segments", args.segments)) if v})
        youcook_bb.check_protocol(args.protocol)
        plan, info = youcook_bb.query_plan(cfg)
        write_spatial_prior(args.out, args.baseline, "youcook-bb", args.protocol, [q for q, _ in plan],
                            youcook_bb.sizes_for(cfg), info, args.grid)
    else:
        cfg = youcook.YouCookConfig(args.benchmark_dir, args.protocol, sizes=args.sizes, frame_size=args.frame_size)
        plan, info = youcook.query_plan(cfg)
        write_spatial_prior(args.out, args.baseline, "youcook", args.protocol, [q for q, _ in plan],
                            youcook.sizes_for(cfg), info, args.grid)


def mask_rule_metadata(name: str, task: str) -> dict:
    """The metadata entry naming the scorer's mask rule (empty for `protocol`); refused for a task whose scorer
    does not read it (the rule would be dropped in silence)."""
    if name == "protocol":
        return {}
    if task not in MASK_RULE_TASKS:
        raise BaselineError(f"--mask-rule {name} is applied by the scorer of {', '.join(MASK_RULE_TASKS)} only; "
                            f"for {task}, write the file without it and score with --mask-normalise none "
                            f"--mask-threshold {NAMED_MASK_RULES[name].threshold}")
    rule = NAMED_MASK_RULES[name]
    return {"mask_rule": {"name": name, "threshold": rule.threshold, "normalise": "max" if rule.normalise else "none",
                          "source": "CVPR appendix 8.3: sentence and region features L2-normalised, mask = cosine "
                                    ">= 0.5"}}


def global_sim(args: argparse.Namespace, task: str) -> dict:
    if not args.store:
        raise BaselineError("global-sim needs --store (the features of the benchmark videos)")
    recorded = mask_rule_metadata(args.mask_rule, task)
    cfg = config_from_args(args)
    session = frozen_session(args.store, args.encoder, cfg, encoder_options(args), args.missing)
    bench = Benchmark(task, args.benchmark_dir, args.protocol, args.boxes, args.segments, args.pools, None)
    metadata = {"config": to_dict(cfg), "git": git_revision(), "store": str(args.store),
                "benchmark_dir": str(args.benchmark_dir), "command": sys.argv, **recorded}
    return run_inference(session, bench, args.out, metadata)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    task = args.task or ("gyt-spatial" if args.benchmark == "gyt" else args.benchmark)
    try:
        if args.baseline == "global-sim":
            summary = global_sim(args, task)
            print(report(summary))
        else:
            if args.overrides or args.store:
                raise BaselineError(f"{args.baseline} reads annotations only: --store and key=value do not apply")
            if args.mask_rule != "protocol":
                raise BaselineError(f"--mask-rule names a rule for global-sim's cosine maps, not for {args.baseline}")
            write_prior(args, task)
    except (BaselineError, *USER_ERRORS) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
