"""Inference: a trained run of any method and a feature store -> a predictions file for one scorer task.

    python -m eval.infer {gyt,gyt-spatial,youcook,mining,retrieval,moments,gyt-clips} --run RUN_DIR --store STORE
        --benchmark-dir DIR --out P [--benchmark gyt|youcook2|mining] [--protocol paper|reference]
        [--preset NAME|FILE.yaml] [--missing fail|miss] [--boxes F] [--segments F] [--pools F]
        [--encoder-preset tiny|vit-b-32] [--clip-model M] [--s3d-weights W --s3d-dict D] [--device D]
        [--no-progress] [key=value ...]

RUN_DIR is a training run directory (its newest checkpoint) or a checkpoint file, of any registered method
(trainer.methods: stg and comma answer gyt, gyt-spatial, youcook and mining; coot retrieval; wsra moments, gyt
and mining); `--benchmark` names whose timed queries retrieval and moments use. `--protocol` picks the
annotation files the scorer will use and the inference preset of eval/inference/presets (paper.yaml,
reference.yaml); `key=value` overrides set fields of eval.inference.config.InferConfig (e.g.
`temporal.threshold=0.6 spatial.chunk=8`). Query and label texts are encoded with the store's own encoder,
rebuilt from its spec (tiny: automatically; real weights: --clip-model / --s3d-weights --s3d-dict), or with
`text.source=store` read from the features extraction stored for captions of the same text.
Prints a summary; the last stdout line is the summary JSON. Exit 0 done, 2 bad inputs (the message says
which), including videos without features under `--missing fail` (the default).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.feature_checks import CorruptFeaturesError
from eval.inference.config import InferConfig, load_infer_config
from eval.inference.encoder import EncoderOptions
from eval.inference.errors import InferenceError
from eval.inference.session import MissingVideosError, Session, method_session
from eval.inference.tasks import Benchmark, run_inference
from eval.predictions import PredictionsError
from eval.scorers.common import MISSING_POLICIES, ScoreError
from eval.scorers.timed_queries import BENCHMARKS
from eval.tasks import TASKS
from manifests.errors import AnnotationError
from pipeline.encoders import ClipLoadError, DictionaryError, S3DLoadError
from pipeline.store import StoreError
from trainer.checkpoint import CheckpointError
from pipeline.config import ConfigError, to_dict
from pipeline.provenance import git_revision

USER_ERRORS = (InferenceError, MissingVideosError, ConfigError, ScoreError, AnnotationError, PredictionsError,
               CheckpointError, StoreError, ClipLoadError, S3DLoadError, DictionaryError, CorruptFeaturesError)


def add_benchmark_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark-dir", required=True, type=Path, help="folder holding the annotation files")
    p.add_argument("--protocol", default="paper", choices=("paper", "reference"),
                   help="scorer protocol (default annotation files) and inference preset (default paper)")
    p.add_argument("--boxes", help="boxes file (default: the scorer's for the protocol)")
    p.add_argument("--segments", help="segments file (default: the scorer's for the protocol)")
    p.add_argument("--benchmark", choices=BENCHMARKS, help="retrieval, moments: whose timed queries")


def add_session_args(p: argparse.ArgumentParser, store_required: bool = True) -> None:
    """Store, inference preset, missing policy and text-encoder options (eval.infer, eval.run, eval.baselines)."""
    p.add_argument("--store", required=store_required, help="feature store holding the benchmark videos at 1 fps")
    p.add_argument("--preset", help="inference preset name or .yaml file (default: the protocol's)")
    p.add_argument("--missing", default="fail", choices=MISSING_POLICIES,
                   help="a video without features: fail the run (default) or leave it out to be scored as a miss")
    p.add_argument("--pools", default="vid2step.json", help="gyt: per-video label pools (default vid2step.json)")
    g = p.add_argument_group("text encoder (rebuilt from the store's spec)")
    g.add_argument("--encoder-preset", choices=("tiny", "vit-b-32"),
                   help="default: tiny when the store was made by a tiny encoder, else vit-b-32")
    g.add_argument("--clip-model", help="CLIP hub id or save_pretrained directory (real weights)")
    g.add_argument("--s3d-weights", help="s3d_howto100m.pth (real weights)")
    g.add_argument("--s3d-dict", help="s3d_dict.npy (real weights)")
    p.add_argument("--device", help="torch device (default: config `device`, auto)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="InferConfig fields, e.g. temporal.smooth=3")


def add_common_args(p: argparse.ArgumentParser) -> None:
    """The task and every inference option (eval.infer, eval.run)."""
    p.add_argument("task", choices=TASKS)
    add_benchmark_args(p)
    add_session_args(p)


def config_from_args(args: argparse.Namespace) -> InferConfig:
    extra = [f"device={args.device}"] if args.device else []
    extra += ["progress=false"] if args.no_progress else []
    return load_infer_config(args.protocol, args.preset, [*args.overrides, *extra])


def encoder_options(args: argparse.Namespace) -> EncoderOptions:
    return EncoderOptions(args.encoder_preset, args.clip_model, args.s3d_weights, args.s3d_dict)


def predict(session: Session, args: argparse.Namespace, task: str, out: Path, cfg: InferConfig) -> dict:
    """Inference of `task` into `out`; the summary."""
    bench = Benchmark(task, args.benchmark_dir, args.protocol, args.boxes, args.segments, args.pools,
                      getattr(args, "benchmark", None))
    metadata = {"config": to_dict(cfg), "git": git_revision(), "store": str(args.store),
                "benchmark_dir": str(args.benchmark_dir), "command": sys.argv}
    return run_inference(session, bench, out, metadata)


def report(summary: dict) -> str:
    """One screen: counts, misses (first few), time."""
    counts = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    width = max(len(k) for k in counts)
    lines = [f"{k:<{width}}  {v}" for k, v in counts.items()]
    missing = summary.get("missing", {})
    lines.append(f"{'missing':<{width}}  {len(missing)}")
    lines += [f"  {item}: {reason}" for item, reason in list(missing.items())[:5]]
    if len(missing) > 5:
        lines.append(f"  ... ({len(missing)} in all, see the JSON)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.infer", description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--run", required=True, help="training run directory or checkpoint file")
    p.add_argument("--out", required=True, type=Path, help="predictions file to write (.h5)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    try:
        cfg = config_from_args(args)
        session = method_session(args.run, args.store, cfg, encoder_options(args), args.missing)
        summary = predict(session, args, args.task, args.out, cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(summary))
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
