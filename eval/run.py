"""Inference and scoring in one command (what `make eval-gyt`, `make eval-yc`, `make eval-myt` run).

    python -m eval.run {gyt,gyt-spatial,youcook,mining,retrieval,moments,gyt-clips} --run RUN_DIR --store STORE
        --benchmark-dir DIR [--benchmark gyt|youcook2|mining] [--protocol paper|reference] [--missing fail|miss]
        [--out-dir D] [inference options of eval.infer]
        [--sizes F | --frame-size WxH] [--mask-threshold T[,T...]] [--mask-normalise max|none[,...]]
        [--tube-iou voxel|act] [--area-split A] [--lengths F] [--classes F] [--temperature T] [key=value ...]

Writes D/predictions.h5 and D/metrics.json (default D = RUN_DIR/eval/<task>-<protocol>), prints the scorer's
table and the inference summary; the last stdout line is the metrics JSON (the scorer's keys plus `inference`:
counts, misses and timings, and `run`: checkpoint and step). The same `--missing` policy governs both halves:
`fail` stops at the first video without features, `miss` leaves it out of the predictions and the scorer
counts it as a miss in every denominator.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
from pathlib import Path

from eval import score
from eval.infer import USER_ERRORS, add_common_args, config_from_args, encoder_options, predict, report
from eval.inference.session import method_session
from eval.scorers import SCORERS
from eval.scorers.common import write_json

SCORER_OPTIONS = ("sizes", "frame_size", "mask_threshold", "mask_normalise", "tube_iou", "lengths", "classes",
                  "temperature", "boxes", "segments", "pools", "benchmark", "area_split")


def run_dir_of(run: str | Path) -> Path:
    """The run directory of a run dir or of one of its checkpoint files."""
    path = Path(run)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--run", required=True, help="training run directory or checkpoint file")
    p.add_argument("--out-dir", type=Path, help="where predictions.h5 and metrics.json go "
                                                "(default RUN_DIR/eval/<task>-<protocol>)")
    g = p.add_argument_group("scoring (see python -m eval.score --help)")
    g.add_argument("--sizes")
    g.add_argument("--frame-size")
    g.add_argument("--mask-threshold", type=_listed(float),
                   help="T, or a list T1,T2,... (gyt: one pass, a row per threshold)")
    g.add_argument("--mask-normalise", type=_listed(str, ("max", "none")),
                   help="max|none, or max,none (gyt: both scales in one pass)")
    g.add_argument("--area-split", help="gyt: widespread/saturated split at this mean box area in pixels "
                                        "(60000; 0: none)")
    g.add_argument("--tube-iou", choices=("voxel", "act"))
    g.add_argument("--lengths")
    g.add_argument("--classes")
    g.add_argument("--temperature")
    return p


def _listed(kind, choices: tuple[str, ...] = ()):
    """Check a value or comma-separated list before inference runs (eval.score parses it again); keep the text."""
    def check(text: str) -> str:
        try:
            values = [kind(v.strip()) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or (choices and any(v not in choices for v in values)):
            allowed = f" of {', '.join(choices)}" if choices else ""
            raise argparse.ArgumentTypeError(f"expected a value{allowed} or a comma-separated list, got {text!r}")
        return text
    return check


def score_argv(args: argparse.Namespace, predictions: Path, out: Path) -> list[str]:
    """The scorer's command line: the options given that the task's scorer config has."""
    argv = [args.task, "--predictions", str(predictions), "--benchmark-dir", str(args.benchmark_dir),
            "--protocol", args.protocol, "--missing", args.missing, "--out", str(out)]
    fields = {f.name for f in dataclasses.fields(SCORERS[args.task].config)}
    for name in SCORER_OPTIONS:
        value = getattr(args, name) if name in fields else None
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def run_score(argv: list[str]) -> tuple[int, str, str]:
    """`python -m eval.score` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = score.main(argv)
    return code, out.getvalue(), err.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    out_dir = args.out_dir or run_dir_of(args.run) / "eval" / f"{args.task}-{args.protocol}"
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions, metrics_path = out_dir / "predictions.h5", out_dir / "metrics.json"
    try:
        cfg = config_from_args(args)
        session = method_session(args.run, args.store, cfg, encoder_options(args), args.missing)
        summary = predict(session, args, args.task, predictions, cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    code, stdout, stderr = run_score(score_argv(args, predictions, metrics_path))
    if code != 0:
        print(stderr.strip() or f"error: the scorer exited with {code}", file=sys.stderr)
        return code
    if stderr.strip():  # the scorer's warnings (e.g. predictions it did not score)
        print(stderr.strip(), file=sys.stderr)
    lines = stdout.strip().splitlines()
    metrics = json.loads(lines[-1])
    metrics["inference"] = {k: v for k, v in summary.items() if k != "benchmark_files"}
    metrics["run"] = {k: session.info.get(k) for k in ("run", "checkpoint", "step", "method", "eval_attention",
                                                         "temporal_source")}
    write_json(metrics_path, metrics)
    print("\n".join(lines[:-1]))
    print("-" * 72)
    print(report(summary))
    print(f"metrics          {metrics_path}")
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
