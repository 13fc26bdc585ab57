"""`python -m eval.drivers.demo` (`make demo`): the whole system end to end on a generated narrated-video world.

    python -m eval.drivers.demo [--out data/demo] [--seed 0] [--train-videos 80] [--test-videos 10]
        [--seconds 30-40] [--ablations] [--epochs N] [--jobs 2] [--grid-dtype float16|int8] [key=value ...]

1. world     `python -m manifests.synth`: videos rendered with known what/when/where, ASR-like narrations for
             the training videos, and the held-out test videos' annotations in the real benchmarks' formats.
2. extract   `python -m pipeline.extract` with the tiny CLIP (randomly initialised: its features carry no
             pretrained meaning) on the training manifest (8-s narration windows at 2 fps) and on the test
             videos (whole videos at 1 fps, squashed to 224x224 as the spatial scorers assume).
3. train     `python -m trainer.train --preset demo`: the STG head, global + local branches; with --ablations
             also the global-only and local-only heads of the paper's Table 6.
4. evaluate  `python -m eval.run` gyt-spatial, gyt and mining on the test videos, and the baselines on the same
             files: centre and uniform priors, the frozen features' similarity (global-sim).
5. pictures  `python -m eval.viz`: heatmap overlays (PNG grid + MP4) of the test query the head points at best
             and of the one it points at worst, timelines of predicted vs true steps, training curves.

Everything lands under --out: world/, stores/, runs/, baselines/, pictures/, logs/ (one log per command, its
command line first), results.json (every metric, timings, commands) and results.md (the table). A world and
stores made before with the same world options are reused. The last stdout line is one JSON object: the
table's figures per method, the pictures and the output folder.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from eval.drivers.config import DemoConfig, WorldConfig, add_world_flags, config_from_flags
from eval.drivers.experiment import (
    Entry, Setup, Stages, baselines, command_main, evaluate, save_results, train_entry,
)
from eval.drivers.results_table import headline
from eval.predictions import read_predictions
from manifests.synth import SynthPaths

ENCODER_NOTE = ("encoders: tiny CLIP of the real architecture, randomly initialised (pipeline/encoders/clip.py): "
                "its features carry no pretrained meaning,\n          so everything the head does below it "
                "learned here from the narrations of the training videos")
ENTRIES = (Entry("stg", "demo"),)
ABLATIONS = (Entry("stg-global-only", "demo", ("stg.loss.local_weight=0",)),
             Entry("stg-local-only", "demo", ("stg.loss.global_weight=0",)))


def parse_args(argv: list[str] | None) -> DemoConfig:
    p = argparse.ArgumentParser(prog="python -m eval.drivers.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="output folder (default data/demo)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the demo preset's)")
    p.add_argument("--ablations", action="store_true", default=None,
                   help="also train the global-only and local-only heads")
    add_world_flags(p)
    return config_from_flags(DemoConfig, p.parse_intermixed_args(argv), ("out", "epochs", "ablations"))


def world_argv(world: WorldConfig, folder: Path, train_window: float = 8.0) -> list[str]:
    """The generator's command line: 2-fps videos (training samples 2 fps, evaluation 1 fps), features stored
    for `train_window` seconds around each narration."""
    return ["--out", folder, "--seed", world.seed, "--train-videos", world.train_videos, "--test-videos",
            world.test_videos, "--seconds", world.seconds, "--fps", 2, "--train-window", f"{train_window:g}",
            "--train-fps", 2,
            "--jobs", world.jobs, "--no-progress", "--overwrite"]


def prepare_data(stages: Stages, world: WorldConfig, out: Path, train_window: float = 8.0
                 ) -> tuple[SynthPaths, Setup]:
    """Generate the world and extract both stores, reusing what an earlier run with the same options made."""
    folder, stores = out / "world", out / "stores"
    argv = world_argv(world, folder, train_window)
    stamp = out / "world.argv.json"
    wanted = json.dumps([str(a) for a in argv])
    paths = SynthPaths.under(folder)
    if not (paths.world.is_file() and stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(stores, ignore_errors=True)
        stamp.unlink(missing_ok=True)
        stages.run("world", "manifests.synth", argv)
        stamp.write_text(wanted)
    tag = "" if world.grid_dtype == "float16" else f"-{world.grid_dtype}"  # a store keeps one grid dtype
    setup = Setup(str(stores / f"train{tag}.zarr"), str(stores / f"test{tag}.zarr"), paths.benchmarks, out)
    common = ["--encoders", "clip", "--preset", "tiny", "--resize", "squash", "--grid-dtype", world.grid_dtype]
    for name, manifest, store in (("extract-train", paths.train_manifest, setup.train_store),
                                  ("extract-test", paths.gyt_manifest, setup.test_store)):
        stages.run(name, "pipeline.extract", ["--manifest", manifest, "--store", store, *common], isolated=True)
    return paths, setup


def pictures(stages: Stages, paths: SynthPaths, run: Path, out: Path) -> list[str]:
    """Overlays of the test query the head points at best and of the one it points at worst (the first also as
    MP4), timelines of their videos, training curves."""
    folder = run / "eval" / "gyt-spatial-paper"
    groups = _groups_by_query(folder / "predictions.h5")
    per_class = json.loads((folder / "metrics.json").read_text())["per_class"]
    ranked = sorted((c for c in per_class if c in groups), key=lambda c: (-per_class[c]["pointing_accuracy"], c))
    chosen = [groups[c] for c in dict.fromkeys([ranked[0], ranked[-1]])] if ranked else []
    common = ["--manifest", paths.gyt_manifest, "--out", out]
    written: list[str] = []
    for k, (vid, segment) in enumerate(chosen):
        written += _paths(stages.run(f"viz-overlay-{k}", "eval.viz", [
            "overlay", "--predictions", folder / "predictions.h5", *common, "--video-id", vid, "--segment", segment,
            *(["--mp4"] if k == 0 else [])]))
    timeline = ["timeline", "--predictions", run / "eval" / "gyt-paper" / "predictions.h5", *common]
    for vid in dict.fromkeys(vid for vid, _ in chosen):
        timeline += ["--video-id", vid]
    written += _paths(stages.run("viz-timeline", "eval.viz", timeline))
    written += _paths(stages.run("viz-curves", "eval.viz", ["curves", "--run", run, "--out", out / "curves.png"]))
    return written


def _groups_by_query(predictions: Path) -> dict[str, tuple[str, str]]:
    """query -> (video, segment) of its first /spatial group."""
    found: dict[str, tuple[str, str]] = {}
    for vid, groups in sorted(read_predictions(predictions).spatial.items()):
        for segment, group in sorted(groups.items()):
            found.setdefault(group.query, (vid, segment))
    return found


def _paths(log: str) -> list[str]:
    return [line for line in log.strip().splitlines()[1:] if line.endswith((".png", ".mp4"))]


def run_demo(cfg: DemoConfig) -> dict:
    out = Path(cfg.out).absolute()
    stages = Stages(out / "logs")
    t0 = time.perf_counter()
    say(f"groundcache demo -> {out}\n{ENCODER_NOTE}")
    paths, setup = prepare_data(stages, cfg.world, out)
    say(f"world + features  {_secs(stages, 'world', 'extract-train', 'extract-test')}  "
        f"({cfg.world.train_videos} training videos, {cfg.world.test_videos} held-out test videos)")
    extra = (f"optim.epochs={cfg.epochs}",) if cfg.epochs else ()
    results: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    for entry in ENTRIES + (ABLATIONS if cfg.ablations else ()):
        runs[entry.name] = train_entry(stages, setup, entry, extra)
        results[entry.name] = evaluate(stages, setup, entry, runs[entry.name])
        say(f"trained {entry.name:<16} {_secs(stages, f'train-{entry.name}')} train, "
            f"{_secs(stages, *[k for k in stages.seconds if k.startswith(f'eval-{entry.name}-')])} evaluate")
    results.update(baselines(stages, setup))
    say(f"baselines         {_secs(stages, *[k for k in stages.seconds if 'baseline' in k or 'score-' in k])}")
    shutil.rmtree(out / "pictures", ignore_errors=True)  # no stale pictures of an earlier run
    drawn = pictures(stages, paths, runs["stg"], out / "pictures")
    say(f"pictures          {_secs(stages, *[k for k in stages.seconds if k.startswith('viz')])}  -> "
        f"{out / 'pictures'}")
    return write_results(out, cfg.world, results, drawn, stages, time.perf_counter() - t0)


def write_results(out: Path, world: WorldConfig, results: dict, drawn: list[str], stages: Stages,
                  seconds: float) -> dict:
    summary = {"out": str(out), "methods": headline(results), "pictures": drawn, "seconds": round(seconds, 1),
               "encoders": "tiny CLIP, randomly initialised", "world": {"seed": world.seed,
               "train_videos": world.train_videos, "test_videos": world.test_videos}}
    save_results(out, summary, results, stages)
    print(f"\nheld-out test videos of the synthetic world; the table is also in {out / 'results.md'}, every metric "
          f"in {out / 'results.json'},\nthe command behind each stage at the top of its log in {out / 'logs'}; "
          f"{len(drawn)} pictures in {out / 'pictures'}; {seconds:.0f} s in all")
    return summary


def say(text: str) -> None:
    print(text, flush=True)


def _secs(stages: Stages, *names: str) -> str:
    return f"{sum(stages.seconds.get(n, 0.0) for n in names):6.1f} s"


def main(argv: list[str] | None = None) -> int:
    return command_main("demo", parse_args, run_demo, argv)


if __name__ == "__main__":
    sys.exit(main())
