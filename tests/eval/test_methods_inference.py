"""Contract test over every registered method (trainer.methods.METHODS): a checkpoint of its tiny preset goes
through the one inference command (`python -m eval.infer`) and the scorer (`python -m eval.score`) on a task it
answers, chosen by the kind of its inference adapter, on a generated store (its texts' stored features:
text.source=store). A new method folder is tested here unchanged."""
from __future__ import annotations

import json

import pytest
import torch

from eval import infer
from eval.predictions import read_predictions
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import write_benchmarks
from trainer.methods import METHODS
from trainer.synthetic import SyntheticSpec, write_synthetic_store
from trainer.train import main

# A task of each adapter kind that the generated store and its benchmark files serve, with the scorer's
# counts of what it scored: 6 videos x 4 narrated events.
TASK_OF_KIND = {"grounding": ("mining", (), {"videos": 6, "segments": 24}),
                "retrieval": ("retrieval", ("--benchmark", "youcook2"), {"clip_t2v_queries": 24}),
                "snippets": ("moments", ("--benchmark", "youcook2"), {"queries": 24})}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                             # the machine is shared
    tmp = tmp_path_factory.mktemp("methods-inference")
    store = str(tmp / "store.zarr")
    write_benchmarks(tmp / "bench", write_synthetic_store(store, SyntheticSpec(videos=6, dim=16, block=4)))
    yield store, tmp / "bench"
    torch.set_num_threads(threads)


def test_every_kind_of_adapter_has_a_task_here():
    assert {m.kind for m in METHODS.values()} <= set(TASK_OF_KIND)
    assert all(TASK_OF_KIND[m.kind][0] in m.tasks for m in METHODS.values())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_checkpoint_goes_through_eval_infer_and_eval_score(world, tmp_path, capsys, name):
    store, bench = world
    method = METHODS[name]
    run = tmp_path / "run"
    assert main(["--store", store, "--out", str(run), "--preset", method.tiny_preset, "optim.max_steps=3",
                 "runtime.progress=false", "data.expect={}"]) == 0
    task, extra, counts = TASK_OF_KIND[method.kind]
    out = tmp_path / "predictions.h5"
    capsys.readouterr()
    assert infer.main([task, "--run", str(run), "--store", store, "--benchmark-dir", str(bench), "--out", str(out),
                       *extra, "--no-progress", "fps=5", "text.source=store"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["task"] == task and summary["missing"] == {} and summary["method"] == f"{name}@step3"
    meta = read_predictions(out).meta
    assert meta.task == task and meta.method == f"{name}@step3"
    metrics = run_score(capsys, task, "--predictions", out, "--benchmark-dir", bench, *extra)
    assert {k: metrics[k] for k in counts} == counts and metrics["method"] == f"{name}@step3"
