"""Contract tests over every registered method (trainer.methods.METHODS), each with its tiny preset: the head
builds and is far smaller than the full one; one step on a generated store gives finite loss terms and a
gradient to every trainable parameter; training runs and its checkpoint loads back; a resumed run continues
bit for bit; two DDP processes give the single process's losses and weights. (The trip through eval.infer
and eval.score is in tests/eval/test_methods_inference.py.) A new method folder is tested here unchanged."""
from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from pipeline.config import ConfigError
from pipeline.store import open_store
from trainer.checkpoint import load_checkpoint, load_trained
from trainer.data import build_index, collate
from trainer.methods import METHODS, build_head, get_method, load_train_config
from trainer.rundir import read_metrics
from trainer.train import main

NAMES = sorted(METHODS)
QUIET = ["runtime.progress=false", "runtime.log_every=1", "runtime.checkpoint_every=1000", "data.expect={}"]


def train(store, out, name: str, *overrides, extra=()):
    return main(["--store", store, "--out", str(out), "--preset", METHODS[name].tiny_preset, *extra, *QUIET,
                 *overrides])


def test_every_method_folder_is_registered_and_unknown_ones_are_refused():
    folders = {p.name for p in METHODS["stg"].presets.parent.parent.iterdir() if (p / "__init__.py").exists()}
    assert {m.presets.parent.name for m in METHODS.values()} == folders
    with pytest.raises(ConfigError, match="unknown method 'nope'; registered methods"):
        get_method("nope")


@pytest.mark.parametrize("name", NAMES)
def test_the_tiny_variant_is_small(name):
    dims = dict.fromkeys(("global", "grid", "sentence", "words"), 12)
    cfg = load_train_config(METHODS[name].tiny_preset)
    full = dataclasses.replace(cfg.section, head=dataclasses.replace(cfg.section.head, variant="full"))
    tiny, big = build_head(cfg, dims), build_head(dataclasses.replace(cfg, **{name: full}), dims)
    assert sum(p.numel() for p in tiny.parameters()) < sum(p.numel() for p in big.parameters()) / 20


@pytest.mark.parametrize("name", NAMES)
def test_one_step_gives_finite_terms_and_a_gradient_to_every_parameter(synthetic_store, name):
    root = synthetic_store[0]
    method = METHODS[name]
    cfg = load_train_config(method.tiny_preset, ["data.expect={}", *method.every_term])
    store = open_store(root)
    dims = {k: int(v) for k, v in store.encoders[cfg.data.encoder]["dims"].items()}
    index = build_index(store, cfg.data)
    batch = collate(method.dataset(root, index, cfg).__getitems__(list(range(cfg.data.batch_size))))
    torch.manual_seed(0)
    head = build_head(cfg, dims).float()
    terms = method.step(head, cfg).float()(batch)
    assert terms["loss"].shape == () and all(torch.isfinite(v) and v.shape == () for v in terms.values())
    terms["loss"].backward()
    missing = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_training_runs_and_its_checkpoint_loads_back(synthetic_store, tmp_path, name):
    run = tmp_path / "run"
    assert train(synthetic_store[0], run, name, "optim.max_steps=2") == 0
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2] and all(np.isfinite(m["loss"]) for m in metrics)
    trained = load_trained(run)
    assert trained.config.method == name and trained.step == 2 and not trained.head.training
    assert type(trained.head) is METHODS[name].build_head


@pytest.mark.parametrize("name", NAMES)
def test_a_resumed_run_continues_exactly(synthetic_store, tmp_path, name):
    steps = ["optim.max_steps=5", "optim.warmup_steps=3", *METHODS[name].every_term]
    assert train(synthetic_store[0], tmp_path / "whole", name, *steps) == 0
    assert train(synthetic_store[0], tmp_path / "split", name, *steps, extra=["--stop-after", "3"]) == 0
    assert len(read_metrics(tmp_path / "split")) == 3
    assert main(["--out", str(tmp_path / "split"), "--resume", "runtime.progress=false"]) == 0
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert [m["loss"] for m in split] == [m["loss"] for m in whole]                 # bit for bit
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def ddp_worker(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if main(argv) != 0:
        raise SystemExit(f"rank {rank} failed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same_weights(one: dict, two: dict) -> None:
    for k, want in one.items():
        got = two[k]
        if k.endswith("in_proj_bias"):  # the key bias: zero gradient in exact arithmetic, so Adam turns float
            d = want.shape[0] // 3      # noise into lr-sized steps of either sign; compare query and value biases
            got, want = torch.cat([got[:d], got[2 * d:]]), torch.cat([want[:d], want[2 * d:]])
        torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5, msg=k)


def two_processes_equal_one(store, tmp_path, preset: str, overrides: list[str]) -> None:
    """2 ranks x half the batch vs 1 process (gloo, CPU): same global batches, same losses and weights."""
    argv = ["--store", store, "--preset", preset, *QUIET, "optim.max_steps=3", "optim.warmup_steps=0", *overrides]
    assert main(["--out", str(tmp_path / "one"), *argv]) == 0
    mp.spawn(ddp_worker, args=(2, free_port(), ["--out", str(tmp_path / "two"), *argv]), nprocs=2, join=True)
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    np.testing.assert_allclose([m["loss"] for m in two], [m["loss"] for m in one], rtol=1e-5)
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert b["world_size"] == 2
    assert_same_weights(a["model"], b["model"])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_two_processes_give_the_single_process_losses(synthetic_store, tmp_path, name):
    two_processes_equal_one(synthetic_store[0], tmp_path, METHODS[name].tiny_preset, list(METHODS[name].rank_invariant))
