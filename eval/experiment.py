"""Train heads on one store and score them, with the baselines, on the same benchmark files: what `make demo`
(eval.demo) and `make compare` (eval.compare) run. Every stage is the project's own command, called in this
process with its output written to a log file (`Stages`), so a row of the results is exactly what the command
lines in that log would give.

    stages = Stages(out / "logs")
    setup = Setup(train_store, test_store, benchmarks, out)
    run = train_entry(stages, setup, Entry("stg", "demo"))
    results = {"stg": evaluate_head(stages, setup, Entry("stg", "demo"), run), **baselines(stages, setup)}

Which scorers a head answers: `stg`/`comma` gyt-spatial, gyt and mining (eval.run); `coot` retrieval (clip-sentence
and video-paragraph over the gyt segments); `wsra` moments (gyt segments) and, from its per-second scores over
each video's vid2step pool, the gyt scorer's temporal accuracy (it localises nothing in space).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from eval.moments_inference import ProposalConfig
from eval.results_table import markdown_table, text_table
from eval.scorers.gyt import GytConfig, uniform_temporal_accuracy

GROUNDING_TASKS = ("gyt-spatial", "gyt", "mining")
TASKS_OF_HEAD = {"stg": GROUNDING_TASKS, "comma": GROUNDING_TASKS, "coot": ("retrieval",),
                 "wsra": ("moments", "gyt")}
# WSRA gives per-second label scores but no spatial maps: of the gyt scorer's figures only these apply.
TEMPORAL_ONLY_KEYS = ("task", "protocol", "frames", "videos", "temporal_accuracy", "missing_videos")
# WSRA's moment proposals on the gyt segments: windows of fixed lengths in seconds (its steps last a few seconds)
PROPOSALS = ProposalConfig(lengths=(4, 6, 8, 12), relative=False)


class StageError(RuntimeError):
    """A stage's command failed (the message names it and its log)."""


@dataclass
class Stages:
    """Runs commands in this process, each with stdout and stderr in LOGS/<name>.log; keeps their timings."""
    logs: Path
    seconds: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def run(self, name: str, module: str, argv: list[str], isolated: bool = False) -> str:
        """`python -m module argv` in this process (or, `isolated`, in a child process: for commands that change
        process-wide settings, such as extraction's allocator and OpenMP settings); returns its stdout +
        stderr (also in the log)."""
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
                found = importlib.import_module(module)
                main = getattr(found, "main", None) or importlib.import_module(f"{module}.__main__").main
                with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                    code = main(argv)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        text = log.read_text()
        if code != 0:
            tail = "\n".join("  " + line for line in text.strip().splitlines()[-6:])
            raise StageError(f"{name}: `{command}` exited with {code} (log: {log})\n{tail}")
        return text

    def timed(self, name: str):
        """Time a block that is not a command (e.g. Python-API inference) under `name`."""
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
    def head(self) -> str:
        named = [o.split("=", 1)[1] for o in self.overrides if o.startswith("head.name=")]
        if named:
            return named[-1]
        from trainer.config import load_config
        from trainer.train_config import PRESET_DIR, TrainConfig

        return load_config(TrainConfig, self.preset, [], PRESET_DIR).head.name


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


def evaluate_head(stages: Stages, setup: Setup, entry: Entry, run: Path, tasks: tuple[str, ...] | None = None
                  ) -> dict[str, dict]:
    """Metrics per task of a trained run (its head's tasks by default)."""
    out: dict[str, dict] = {}
    for task in tasks or TASKS_OF_HEAD[entry.head]:
        name = f"eval-{entry.name}-{task}"
        if task in GROUNDING_TASKS and entry.head in ("stg", "comma"):
            out[task] = last_json(stages.run(name, "eval.run", [
                task, "--run", run, "--store", setup.test_store, "--benchmark-dir", setup.benchmarks,
                "--no-progress"]))
        else:
            out[task] = _ranked(stages, setup, name, task, run)
    return out


def _ranked(stages: Stages, setup: Setup, name: str, task: str, run: Path) -> dict:
    """COOT retrieval, WSRA moments and WSRA per-second scores (Python-API inference), then the scorer."""
    from eval.moments_inference import infer_moments, infer_temporal
    from eval.retrieval_inference import infer_retrieval

    predictions = run / "eval" / f"{task}.h5"
    predictions.parent.mkdir(parents=True, exist_ok=True)
    with stages.timed(name):
        if task == "retrieval":
            infer_retrieval(run, setup.test_store, predictions, kinds=("step",))
        elif task == "moments":
            infer_moments(run, setup.test_store, predictions, kinds=("step",), proposals=PROPOSALS)
        else:
            infer_temporal(run, setup.test_store, predictions, task=task)
    argv = [task, "--predictions", predictions, "--benchmark-dir", setup.benchmarks,
            "--out", predictions.with_suffix(".json")]
    if task in ("retrieval", "moments"):
        argv += ["--benchmark", "gyt"]
    if task != "gyt":
        return _score(stages, f"score-{name}", argv)
    # No tubes: every predicted action second is "lost" to the spatial metrics, which --missing miss allows.
    metrics = _score(stages, f"score-{name}", [*argv, "--missing", "miss"])
    return {k: metrics[k] for k in TEMPORAL_ONLY_KEYS if k in metrics}


def chance_retrieval(benchmarks: Path) -> dict:
    """Expected R@1 (percent) of a ranking drawn at random over the gyt segments (clips) and their videos."""
    from eval.scorers.timed_queries import load_timed_queries

    queries = load_timed_queries("gyt", benchmarks)
    videos = {q.video_id for q in queries}
    return {"clip_t2v_r1": 100.0 / len(queries), "video_t2v_r1": 100.0 / len(videos), "expected_value": True} \
        if queries else {}


def baselines(stages: Stages, setup: Setup, tasks: tuple[str, ...] = GROUNDING_TASKS,
              retrieval: bool = False, moments_run: Path | None = None) -> dict[str, dict]:
    """The annotation-only priors and the frozen features' similarity on the same files: {row: {task: metrics}};
    with `retrieval`, the uniform prior's row gets the chance level of text-to-video retrieval, with
    `moments_run` (a wsra run) that of moment retrieval with the run's proposal windows."""
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
        from eval.moments_inference import chance_moments

        with stages.timed("baseline-chance-moments"):
            rows["uniform prior"]["moments"] = chance_moments(moments_run, setup.test_store, setup.benchmarks,
                                                              "gyt", PROPOSALS)
    for task in tasks:
        path = folder / f"global-sim-{task}.h5"
        stages.run(f"baseline-global-sim-{task}", "eval.baselines", [
            "global-sim", "--task", task, "--store", setup.test_store, *bench, "--out", path, "--no-progress"])
        rows["global-sim (frozen)"][task] = _score(stages, f"score-global-sim-{task}",
                                                   [task, "--predictions", path, *bench])
    return rows


def save_results(out: Path, summary: dict, results: dict, stages: Stages) -> None:
    """OUT/results.json (the summary, every metric, the stage timings and commands) and OUT/results.md (the
    table); prints the table."""
    full = {**summary, "metrics": results, "commands": stages.commands,
            "stage_seconds": {k: round(v, 2) for k, v in stages.seconds.items()}}
    (out / "results.json").write_text(json.dumps(full, indent=1, sort_keys=True, default=str))
    (out / "results.md").write_text(markdown_table(results) + "\n")
    print("\n" + text_table(results))


def command_main(prog: str, run, args) -> int:
    """Exit status of `run(args)` as a command: a failed stage is one line on stderr (1), else the summary it
    returns is the last stdout line."""
    try:
        summary = run(args)
    except StageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0
