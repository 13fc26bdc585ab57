"""`python -m eval.drivers.compare` (`make compare`): every registered method trained with the same budget on one
store, scored with the baselines on the same benchmark files, in one table (text and markdown).

    python -m eval.drivers.compare [--out data/compare] [--steps 600] [--methods stg,comma,coot,wsra]
        [--train-store S --test-store T --benchmark-dir DIR]        # default: the demo's synthetic world
        [--seed 0 --train-videos 80 --test-videos 10 --seconds 30-40] [key=value ...]

Budget: every method takes `--steps` optimiser steps on the training store with its registry entry's
`demo_preset` (trainer.methods: its small configuration adapted to the demo's 8-s windows at 2 fps) and, in a
`<name>-paper` row next to it, its `paper_preset` where it has one (comma-paper-demo, coot-paper-tiny,
wsra-paper-tiny: the paper's choices where the demo preset keeps the released code's). Scores:
each method on the tasks its entry `reported` names (stg and comma: gyt-spatial, gyt and mining; coot:
clip-sentence and video-paragraph retrieval of the gyt segments; wsra: moment retrieval of the gyt segments
and gyt temporal accuracy from its per-second scores). Baselines: centre/uniform priors and the frozen features'
similarity on the grounding tasks; in the uniform prior's row also the chance levels of retrieval (R@1 =
1 / candidates) and of moment retrieval (the proposal windows of a method answering `moments`, ranked at
random). Without stores the demo's world is generated (or reused) under --out. Writes OUT/results.json (every
metric) and OUT/results.md; the last stdout line is the table's figures as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.drivers.config import CompareConfig, add_world_flags, config_from_flags
from eval.drivers.demo import prepare_data, say
from eval.drivers.experiment import (
    Entry, Setup, Stages, baselines, command_main, evaluate, save_results, train_entry,
)
from eval.drivers.results_table import headline
from trainer.methods import METHODS


def parse_args(argv: list[str] | None) -> CompareConfig:
    p = argparse.ArgumentParser(prog="python -m eval.drivers.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="output folder (default data/compare)")
    p.add_argument("--steps", type=int, help="optimiser steps per method (the shared budget; default 600)")
    p.add_argument("--methods", "--heads", type=lambda text: tuple(t for t in text.split(",") if t),
                   help=f"comma-separated, from {','.join(METHODS)} (default: all)")
    g = p.add_argument_group("stores of your own (else the demo's synthetic world under --out)")
    g.add_argument("--train-store")
    g.add_argument("--test-store", help="the benchmark videos' features (whole videos at 1 fps)")
    g.add_argument("--benchmark-dir", help="the benchmarks root (groundingyoutube/, miningyoutube/)")
    add_world_flags(p)
    cfg = config_from_flags(CompareConfig, p.parse_intermixed_args(argv),
                            ("out", "steps", "methods", "train_store", "test_store", "benchmark_dir"))
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}: choose from {sorted(METHODS)}")
    return cfg


def entries(methods: tuple[str, ...]) -> list[Entry]:
    """A row per method (its demo preset) and, where its registry entry has one, a `<name>-paper` row (the same
    scale with the paper's choices where the demo preset keeps the released code's)."""
    rows = []
    for name in methods:
        rows.append(Entry(name, METHODS[name].demo_preset))
        if METHODS[name].paper_preset:
            rows.append(Entry(f"{name}-paper", METHODS[name].paper_preset))
    return rows


def compare(cfg: CompareConfig) -> dict:
    out = Path(cfg.out).absolute()
    stages = Stages(out / "logs")
    t0 = time.perf_counter()
    if cfg.train_store:
        setup = Setup(cfg.train_store, cfg.test_store, Path(cfg.benchmark_dir).absolute(), out)
    else:
        setup = prepare_data(stages, cfg.world, out)[1]
        say(f"world + features  {sum(stages.seconds.values()):6.1f} s")
    results: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    budget = (f"optim.max_steps={cfg.steps}",)
    reported: dict[str, tuple[str, ...]] = {}
    for entry in entries(cfg.methods or tuple(METHODS)):
        runs[entry.name] = train_entry(stages, setup, entry, budget)
        results[entry.name] = evaluate(stages, setup, entry, runs[entry.name])
        reported[entry.name] = METHODS[entry.method].reported
        say(f"{entry.name:<12} trained and scored  {stages.seconds[f'train-{entry.name}']:6.1f} s train")
    moments = next((runs[n] for n in runs if "moments" in reported[n]), None)
    results.update(baselines(stages, setup, retrieval=any("retrieval" in reported[n] for n in runs),
                             moments_run=moments))
    seconds = time.perf_counter() - t0
    summary = {"out": str(out), "steps": cfg.steps, "methods": headline(results), "seconds": round(seconds, 1)}
    save_results(out, summary, results, stages)
    print(f"\n{cfg.steps} optimiser steps per method; every metric in {out / 'results.json'}, the table in "
          f"{out / 'results.md'}, one log per command in {out / 'logs'}; {seconds:.0f} s in all")
    return summary


def main(argv: list[str] | None = None) -> int:
    return command_main("compare", parse_args, compare, argv)


if __name__ == "__main__":
    sys.exit(main())
