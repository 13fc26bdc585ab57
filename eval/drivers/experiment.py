"""Train methods on one store and score them, with the baselines, on the same benchmark files: what `make demo`
(eval.drivers.demo) and `make compare` (eval.drivers.compare) run. Every stage is the project's own command,
called in this process (`COMMANDS`: normal imports) with its output written to a log file (`Stages`), so a row
of the results is exactly what the command lines in that log would give.

    stages = Stages(out / "logs")
    setup = Setup(train_store, test_store, benchmarks, out)
    run = train_entry(stages, setup, Entry("stg", "demo"))
    results = {"stg": evaluate(stages, setup, Entry("stg", "demo"), run), **baselines(stages, setup)}

Which tasks a method is scored on is its registry entry's `reported` (trainer.methods); each goes through
`python -m eval.run` with the method's `eval_overrides`. A method whose adapter draws no heatmaps (kind
"snippets") is scored on the gyt scorer's temporal figures only (its spatial ones are misses).
"""
from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eval import baselines as baselines_command
from eval import run as run_command
from eval import score as score_command
from eval import viz as viz_command
from eval.drivers.results_table import markdown_table, text_table
from eval.inference import load_infer_config, method_session
from eval.inference.encoder import EncoderOptions
from eval.inference.moments import chance_moments
from eval.scorers.gyt import GytConfig, uniform_temporal_accuracy
from eval.scorers.timed_queries import load_timed_queries
from eval.tasks import SPATIAL_TASKS
from manifests.synth import __main__ as synth_command
from trainer import train as train_command
from trainer.methods import get_method, load_train_config

# The commands the drivers run in this process; pipeline.extract runs isolated (a child process), as it sets
# process-wide allocator and OpenMP options.
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "manifests.synth": synth_command.main, "trainer.train": train_command.main, "eval.run": run_command.main,
    "eval.score": score_command.main, "eval.baselines": baselines_command.main, "eval.viz": viz_command.main,
}
BASELINE_TASKS = ("gyt-spatial", "gyt", "mining")
# Of the gyt scorer's figures, those a method without heatmaps answers.
TEMPORAL_ONLY_KEYS = ("task", "protocol", "frames", "videos", "temporal_accuracy", "missing_videos")
# Moment proposals on the gyt segments: windows of fixed lengths in seconds (its steps last a few seconds).
PROPOSALS = ("moments.lengths=[4,6,8,12]", "moments.relative=false")
TIMED_QUERIES = ("retrieval", "moments")  # tasks scored on the gyt segments' timed queries


class StageError(RuntimeError):
    """A stage's command failed (the message names it and its log)."""


@dataclass
class Stages:
    """Runs commands in this process, each with stdout and stderr in LOGS/<name>.log; keeps their timings."""
    logs: Path
    seconds: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def run(self, name: str, module: str, argv: list[str], isolated: bool = False) -> str:
        """`python -m module argv`: one of COMMANDS in this process, or, `isolated`, any module in a child
        process; returns its stdout + stderr (also in the log)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        argv = [str(a) for a in argv]
        command = f"python -m {module} " + " ".join(shlex.quote(a) for a in argv)
        self.commands.append(command)
        t0 = time.perf_counter()
        with open(log, "w") as f:
            print(f"$ {command}", file=f, flush=True)
            if isolated:
                code = subprocess.run([sys.executable, "-m", module, *argv], stdout=f,
                                      stderr=subprocess.STDOUT).returncode
            else:
                with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                    code = COMMANDS[module](argv)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        text = log.read_text()
        if code != 0:
            tail = "\n".join("  " + line for line in text.strip().splitlines()[-6:])
            raise StageError(f"{name}: `{command}` exited with {code} (log: {log})\n{tail}")
        return text

    def timed(self, name: str):
        """Time a block that is not a command (a chance level computed in Python) under `name`."""
        return _Timer(self.seconds, name)


class _Timer(contextlib.AbstractContextManager):
    def __init__(self, seconds: dict[str, float], name: str):
        self.seconds, self.name = seconds, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - self.t0
        return False


@dataclass(frozen=True)
class Setup:
    train_store: str
    test_store: str
    benchmarks: Path                # the benchmarks root (groundingyoutube/, miningyoutube/, ...)
    out: Path                       # runs/, baselines/ and logs/ go here


@dataclass(frozen=True)
class Entry:
    """One trained method: a row of the results."""
    name: str                       # row label and run folder (runs/<name>)
    preset: str                     # trainer preset
    overrides: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        return load_train_config(self.preset, self.overrides).method


def last_json(text: str) -> dict:
    """The JSON object on the last line of a command's output (the project's commands all end with one)."""
    return json.loads(text.strip().splitlines()[-1].split("$ ", 1)[-1])


def train_entry(stages: Stages, setup: Setup, entry: Entry, extra: tuple[str, ...] = ()) -> Path:
    """Train `entry` into a fresh run folder; the run directory."""
    run = setup.out / "runs" / entry.name
    if run.exists():
        shutil.rmtree(run)
    stages.run(f"train-{entry.name}", "trainer.train",
               ["--store", setup.train_store, "--out", run, "--preset", entry.preset, *entry.overrides,
                "runtime.progress=false", *extra])
    return run


def _score(stages: Stages, name: str, argv: list[str]) -> dict:
    return last_json(stages.run(name, "eval.score", argv))


def evaluate(stages: Stages, setup: Setup, entry: Entry, run: Path, tasks: tuple[str, ...] | None = None,
             task_args: dict[str, list] | None = None) -> dict[str, dict]:
    """Metrics per task of a trained run (the tasks its method reports by default), each by `eval.run` (with
    `task_args[task]` added)."""
    method = get_method(entry.method)
    out: dict[str, dict] = {}
    for task in tasks or method.reported:
        argv = [task, "--run", run, "--store", setup.test_store, "--benchmark-dir", setup.benchmarks,
                "--no-progress", *method.eval_overrides]
        argv += ["--benchmark", "gyt"] if task in TIMED_QUERIES else []
        argv += list(PROPOSALS) if task == "moments" else []
        argv += list((task_args or {}).get(task, ()))
        temporal_only = task in SPATIAL_TASKS and method.kind != "grounding"
        # No tubes: every predicted action second is "lost" to the spatial metrics, which --missing miss allows.
        metrics = last_json(stages.run(f"eval-{entry.name}-{task}", "eval.run",
                                       [*argv, *(["--missing", "miss"] if temporal_only else [])]))
        out[task] = {k: metrics[k] for k in TEMPORAL_ONLY_KEYS if k in metrics} if temporal_only else metrics
    return out


def chance_retrieval(benchmarks: Path) -> dict:
    """Expected R@1 (percent) of a ranking drawn at random over the gyt segments (clips) and their videos."""
    queries = load_timed_queries("gyt", benchmarks)
    videos = {q.video_id for q in queries}
    return {"clip_t2v_r1": 100.0 / len(queries), "video_t2v_r1": 100.0 / len(videos), "expected_value": True} \
        if queries else {}


def baselines(stages: Stages, setup: Setup, tasks: tuple[str, ...] = BASELINE_TASKS,
              retrieval: bool = False, moments_run: Path | None = None) -> dict[str, dict]:
    """The annotation-only priors and the frozen features' similarity on the same files: {row: {task: metrics}};
    with `retrieval`, the uniform prior's row gets the chance level of text-to-video retrieval, with
    `moments_run` (a run answering `moments`) that of moment retrieval with the run's proposal windows."""
    folder = setup.out / "baselines"
    folder.mkdir(parents=True, exist_ok=True)
    bench = ["--benchmark-dir", setup.benchmarks]
    rows: dict[str, dict] = {"centre prior": {}, "uniform prior": {}, "global-sim (frozen)": {}}
    for prior, row in (("centre", "centre prior"), ("uniform", "uniform prior")):
        for task in tasks:
            if task == "gyt" or (task == "mining" and prior != "uniform"):
                continue
            path = folder / f"{prior}-{task}.h5"
            stages.run(f"baseline-{prior}-{task}", "eval.baselines", [prior, "--task", task, *bench, "--out", path])
            rows[row][task] = _score(stages, f"score-{prior}-{task}", [task, "--predictions", path, *bench])
    if "gyt" in tasks:
        expected = uniform_temporal_accuracy(GytConfig(setup.benchmarks))
        rows["uniform prior"]["gyt"] = {"temporal_accuracy": expected, "expected_value": True}
    if retrieval:
        rows["uniform prior"]["retrieval"] = chance_retrieval(setup.benchmarks)
    if moments_run is not None:
        with stages.timed("baseline-chance-moments"):
            rows["uniform prior"]["moments"] = moments_chance(setup, moments_run)
    for task in tasks:
        path = folder / f"global-sim-{task}.h5"
        stages.run(f"baseline-global-sim-{task}", "eval.baselines", [
            "global-sim", "--task", task, "--store", setup.test_store, *bench, "--out", path, "--no-progress"])
        rows["global-sim (frozen)"][task] = _score(stages, f"score-global-sim-{task}",
                                                   [task, "--predictions", path, *bench])
    return rows


def moments_chance(setup: Setup, run: Path) -> dict:
    """The chance level of moment retrieval on the gyt segments with the proposal windows `run` ranks."""
    cfg = load_infer_config("paper", None, [*PROPOSALS, "progress=false", "text.source=store"])  # no texts read
    session = method_session(run, setup.test_store, cfg, EncoderOptions(), "miss")
    return chance_moments(session, "gyt", setup.benchmarks)


def save_results(out: Path, summary: dict, results: dict, stages: Stages) -> None:
    """OUT/results.json (the summary, every metric, the stage timings and commands) and OUT/results.md (the
    table); prints the table."""
    full = {**summary, "metrics": results, "commands": stages.commands,
            "stage_seconds": {k: round(v, 2) for k, v in stages.seconds.items()}}
    (out / "results.json").write_text(json.dumps(full, indent=1, sort_keys=True, default=str))
    (out / "results.md").write_text(markdown_table(results) + "\n")
    print("\n" + text_table(results))


def command_main(prog: str, parse, run, argv: list[str] | None) -> int:
    """Exit status of `run(parse(argv))` as a command: a bad option or `key=value` is one line on stderr (2), a
    failed stage too (1); else the summary `run` returns is the last stdout line."""
    try:
        cfg = parse(argv)
    except ValueError as exc:  # ConfigError included
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run(cfg)
    except StageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0
