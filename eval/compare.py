"""`python -m eval.compare` (`make compare`): the four heads trained with the same budget on one store, scored
with the baselines on the same benchmark files, in one table (text and markdown).

    python -m eval.compare [--out data/compare] [--steps 600] [--heads stg,comma,coot,wsra]
        [--train-store S --test-store T --benchmark-dir DIR]        # default: the demo's synthetic world
        [--seed 0 --train-videos 80 --test-videos 10 --seconds 30-40]

Budget: every head takes `--steps` optimiser steps on the training store with its small configuration
(`HEADS` below: the demo preset for stg, the same with CoMMA's choices for comma, coot-tiny, wsra-tiny).
Scores: stg and comma on gyt-spatial, gyt and mining; coot on clip-sentence and video-paragraph retrieval of
the gyt segments; wsra on moment retrieval of the gyt segments and on gyt temporal accuracy from its per-second
scores. Baselines: centre/uniform priors and the frozen features' similarity on the grounding tasks; in the
uniform prior's row also the chance levels of retrieval (R@1 = 1 / candidates) and of moment retrieval (wsra's
proposal windows ranked at random). Without stores the demo's world is generated (or reused) under --out.
Writes OUT/results.json (every metric) and OUT/results.md; the last stdout line is the table's figures as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.demo import prepare_data, say
from eval.experiment import (
    Entry, Setup, Stages, baselines, command_main, evaluate_head, save_results, train_entry,
)
from eval.results_table import headline

# The same store and the same small widths (tiny variants: d = 32) for every head; presets adapt each method's
# own choices to the store's 8-s windows at 2 fps.
HEADS = {
    "stg": Entry("stg", "demo"),
    "comma": Entry("comma", "demo", ("head.name=comma", "loss.global_weight=0", "loss.form=milnce",
                                     "head.eval_score=dot", "head.eval_residual=none")),
    "coot": Entry("coot", "coot-tiny"),
    "wsra": Entry("wsra", "wsra-tiny"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eval.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/compare"))
    p.add_argument("--steps", type=int, default=600, help="optimiser steps per head (the shared budget)")
    p.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated, from {','.join(HEADS)}")
    g = p.add_argument_group("stores of your own (else the demo's synthetic world under --out)")
    g.add_argument("--train-store")
    g.add_argument("--test-store", help="the benchmark videos' features (whole videos at 1 fps)")
    g.add_argument("--benchmark-dir", type=Path, help="the benchmarks root (groundingyoutube/, miningyoutube/)")
    w = p.add_argument_group("the synthetic world (as python -m eval.demo)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--train-videos", type=int, default=80)
    w.add_argument("--test-videos", type=int, default=10)
    w.add_argument("--seconds", default="30-40")
    w.add_argument("--jobs", type=int, default=2)
    w.add_argument("--grid-dtype", default="float16", choices=("float16", "int8"))
    args = p.parse_args(argv)
    unknown = [h for h in args.heads.split(",") if h not in HEADS]
    if unknown:
        p.error(f"unknown heads {unknown}: choose from {sorted(HEADS)}")
    given = [args.train_store, args.test_store, args.benchmark_dir]
    if any(given) and not all(given):
        p.error("--train-store, --test-store and --benchmark-dir go together")
    return args


def compare(args: argparse.Namespace) -> dict:
    out = args.out.absolute()
    stages = Stages(out / "logs")
    t0 = time.perf_counter()
    if args.train_store:
        setup = Setup(args.train_store, args.test_store, args.benchmark_dir.absolute(), out)
    else:
        setup = prepare_data(stages, args, out)[1]
        say(f"world + features  {sum(stages.seconds.values()):6.1f} s")
    results: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    budget = (f"optim.max_steps={args.steps}",)
    for name in args.heads.split(","):
        entry = HEADS[name]
        runs[name] = train_entry(stages, setup, entry, budget)
        results[name] = evaluate_head(stages, setup, entry, runs[name])
        say(f"{name:<6} trained and scored  {stages.seconds[f'train-{name}']:6.1f} s train")
    results.update(baselines(stages, setup, retrieval="coot" in runs, moments_run=runs.get("wsra")))
    seconds = time.perf_counter() - t0
    summary = {"out": str(out), "steps": args.steps, "methods": headline(results), "seconds": round(seconds, 1)}
    save_results(out, summary, results, stages)
    print(f"\n{args.steps} optimiser steps per head; every metric in {out / 'results.json'}, the table in "
          f"{out / 'results.md'}, one log per command in {out / 'logs'}; {seconds:.0f} s in all")
    return summary


def main(argv: list[str] | None = None) -> int:
    return command_main("compare", compare, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
