"""Inference + scoring end to end on a small synthetic world (real videos, tiny CLIP features): a head
trained a few steps by trainer.train, `python -m eval.run` for every task under both protocols, the global-sim
baseline and the annotation-only priors on the same annotation files, all through the real scorers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eval.predictions import read_predictions
from manifests.synth import WorldConfig, generate
from pipeline import extract
from tests.eval.helpers import run_baseline, run_score
from tests.eval.inference_helpers import run_eval, run_global_sim
from trainer import train

pytestmark = pytest.mark.slow

WORLD = WorldConfig(seed=0, train_videos=2, test_videos=2, seconds=(20, 25))
KEYS = {"gyt-spatial": {"pointing_accuracy", "iou_gt_0.3", "mean_iou", "frames"},
        "youcook": {"pointing_accuracy", "frames"},
        "gyt": {"iou_pointing", "map@0.1", "map@0.5", "map_mean", "per_class"},
        "mining": {"iou", "iod", "mof", "per_class"}}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(benchmarks dir, test store, trained run dir, sizes file)."""
    root = tmp_path_factory.mktemp("synthetic-eval")
    paths = generate(root / "world", WORLD, jobs=1, progress=False).paths
    test_store, train_store = str(root / "test.zarr"), str(root / "train.zarr")
    for manifest, store in ((paths.gyt_manifest, test_store), (paths.train_manifest, train_store)):
        assert extract.main(["--manifest", str(manifest), "--store", store, "--encoders", "clip", "--preset", "tiny",
                             "--resize", "squash", "--device", "cpu"]) == 0
    run = root / "run"
    assert train.main(["--store", train_store, "--out", str(run), "--preset", "tiny", "optim.max_steps=3",
                       "runtime.progress=false", "runtime.device=cpu"]) == 0
    bench = Path(paths.benchmarks)
    return bench, test_store, run, bench / "groundingyoutube" / "id2wh_new.json"


def _scorer_args(task: str, sizes: Path) -> list:
    return ["--sizes", sizes] if task == "youcook" else []


@pytest.mark.parametrize("protocol", ["paper", "reference"])
def test_eval_run_every_task(synthetic, capsys, protocol):
    bench, store, run, sizes = synthetic
    for task, keys in KEYS.items():
        metrics = run_eval(capsys, task, "--run", run, "--store", store, "--benchmark-dir", bench, "--protocol",
                           protocol, "--no-progress", *_scorer_args(task, sizes))
        assert keys <= metrics.keys() and metrics["missing_videos"] == []
        assert metrics["method"] == "stg@step3" and metrics["predictions_protocol"] == protocol
        folder = run / "eval" / f"{task}-{protocol}"
        assert (folder / "metrics.json").is_file()
        preds = read_predictions(folder / "predictions.h5")
        if task == "gyt":  # one tube per run of a predicted action; every action second is covered
            assert metrics["action_seconds_without_tube"] == 0
            assert metrics["detections"] == metrics["inference"]["tubes"] == sum(map(len, preds.spatial.values()))
        if task in ("gyt-spatial", "youcook") and protocol == "reference":
            assert any(sp.padding is not None for groups in preds.spatial.values() for sp in groups.values())


def test_methods_answer_the_same_questions(synthetic, tmp_path, capsys):
    """global-sim and the priors on the same annotation files: every file scores with --missing fail (it holds
    every group the scorer asks for) and every method is scored on the same frames."""
    bench, store, run, sizes = synthetic
    frames: dict[str, set] = {}
    for task in KEYS:
        out = tmp_path / f"global-{task}.h5"
        run_global_sim(capsys, "--task", task, "--store", store, "--benchmark-dir", bench, "--out", out,
                       "--no-progress")
        found = {run_score(capsys, task, "--predictions", out, "--benchmark-dir", bench,
                           *_scorer_args(task, sizes)).get("frames")}
        priors = ["uniform"] if task == "mining" else [] if task == "gyt" else ["centre", "centre-cell", "uniform"]
        for prior in priors:
            path = tmp_path / f"{prior}-{task}.h5"
            run_baseline(prior, "--task", task, "--benchmark-dir", bench, "--out", path,
                         *(["--sizes", sizes] if task == "youcook" else []))
            found.add(run_score(capsys, task, "--predictions", path, "--benchmark-dir", bench,
                                *_scorer_args(task, sizes)).get("frames"))
        frames[task] = found
        assert len(found) == 1, (task, found)
    assert frames["gyt-spatial"] == frames["youcook"]  # the synthetic world annotates the same seconds


def test_eval_commands_do_not_import_ray():
    code = "import sys, eval.run, eval.infer, eval.baselines; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
