"""The coot and wsra heads through the `train` command: presets with the papers' values, short runs on a
generated store whose loss falls, exact resume (both draw random samples inside the step), trained heads loaded
back for evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.checkpoint import load_checkpoint, load_trained
from trainer.config import ConfigError, load_config, load_yaml, save_yaml
from trainer.heads import CootHead, WsraHead
from trainer.rundir import read_metrics
from trainer.train import main
from trainer.train_config import PRESET_DIR, TrainConfig

QUIET = ["runtime.progress=false", "runtime.log_every=1", "runtime.checkpoint_every=1000"]


def train(store, out, preset, *overrides, extra=()):
    return main(["--store", store, "--out", str(out), "--preset", preset, *extra, *QUIET, *overrides])


def test_presets_set_the_papers_values():
    coot = load_config(TrainConfig, "coot", [], PRESET_DIR)
    assert (coot.head.name, coot.head.dim, coot.head.heads, coot.data.batch_size) == ("coot", 384, 8, 64)
    assert (coot.optim.name, coot.optim.lr, coot.optim.betas, coot.optim.eps) == ("radam", 9e-4, (0.56, 0.98), 1.5e-9)
    c = coot.loss.coot
    assert c.cycle_weight == 0.001 and {c.clip_margin, c.video_margin, c.global_margin, c.cluster_clip_margin,
                                        c.cluster_video_margin} == {0.2}
    assert (coot.head.coot.af_heads, coot.head.coot.af_mult, coot.head.coot.dropout) == (2, 2, 0.05)
    wsra = load_config(TrainConfig, "wsra", [], PRESET_DIR)
    w = wsra.loss.wsra
    assert (wsra.head.name, wsra.data.batch_size, wsra.optim.lr, wsra.optim.schedule) == ("wsra", 42, 1e-4, "constant")
    assert (w.top_k, w.last_k, w.crov_threshold, w.instance_weight, w.vas_weight) == (3, 2, 0.9, 1.0, 0.1)
    for tiny in ("coot-tiny", "wsra-tiny"):
        assert load_config(TrainConfig, tiny, [], PRESET_DIR).head.variant == "tiny"


@pytest.mark.parametrize("preset", ["coot", "wsra", "coot-tiny", "wsra-tiny"])
def test_presets_round_trip_with_their_nested_sections(preset, tmp_path):
    cfg = load_config(TrainConfig, preset, ["head.coot.pool=max", "loss.wsra.rank_by=matching"], PRESET_DIR)
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_yaml(TrainConfig, tmp_path / "config.yaml") == cfg
    assert cfg.head.coot.pool == "max" and cfg.loss.wsra.rank_by == "matching"
    with pytest.raises(ConfigError, match=r"unknown key 'loss\.coot\.cycle'; valid keys in loss\.coot"):
        load_config(TrainConfig, preset, ["loss.coot.cycle=1"], PRESET_DIR)


@pytest.mark.parametrize("preset,lr,terms,head_type", [
    ("coot-tiny", 3e-3, {"clip", "video", "global", "cluster_clip", "cluster_video", "cycle"}, CootHead),
    ("wsra-tiny", 1e-2, {"background", "vas", "instance", "crov"}, WsraHead),
], ids=["coot", "wsra"])
def test_short_training_lowers_the_loss(synthetic_store, tmp_path, preset, lr, terms, head_type):
    run = tmp_path / "run"
    assert train(synthetic_store[0], run, preset, "optim.max_steps=60", f"optim.lr={lr}") == 0
    metrics = read_metrics(run)
    assert len(metrics) == 60 and {k[5:] for k in metrics[0] if k.startswith("loss_")} == terms
    curve = [m["loss"] for m in metrics]
    assert np.all(np.isfinite(curve)) and np.mean(curve[-6:]) < 0.8 * np.mean(curve[:6]), curve
    trained = load_trained(run)
    assert isinstance(trained.head, head_type) and not trained.head.training and trained.step == 60


@pytest.mark.parametrize("preset", ["coot-tiny", "wsra-tiny"])
def test_resumed_run_continues_exactly(synthetic_store, tmp_path, preset):
    steps = ["optim.max_steps=5", "loss.coot.cycle_weight=1" if preset == "coot-tiny" else "loss.wsra.top_k=1"]
    assert train(synthetic_store[0], tmp_path / "whole", preset, *steps) == 0
    assert train(synthetic_store[0], tmp_path / "split", preset, *steps, extra=["--stop-after", "3"]) == 0
    assert main(["--out", str(tmp_path / "split"), "--resume", "runtime.progress=false"]) == 0
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert [m["loss"] for m in split] == [m["loss"] for m in whole]
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert all((a["model"][k] == b["model"][k]).all() for k in a["model"])


@pytest.mark.slow
@pytest.mark.parametrize("preset,overrides", [
    ("coot-tiny", ["head.coot.dropout=0", "loss.coot.cycle_samples=0"]),   # no per-rank random draws
    ("wsra-tiny", ["data.batch_size=6"]),
])
def test_two_processes_give_the_single_process_losses(synthetic_store, tmp_path, preset, overrides):
    """2 ranks x half the batch vs 1 process (gloo, CPU): gathered embeddings give the same losses and weights."""
    import torch.multiprocessing as mp

    from tests.trainer.test_train import _ddp_worker, _free_port

    argv = ["--store", synthetic_store[0], "--preset", preset, *QUIET, "optim.max_steps=3", *overrides]
    assert main(["--out", str(tmp_path / "one"), *argv]) == 0
    mp.spawn(_ddp_worker, args=(2, _free_port(), ["--out", str(tmp_path / "two"), *argv]), nprocs=2, join=True)
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    np.testing.assert_allclose([m["loss"] for m in two], [m["loss"] for m in one], rtol=1e-5)
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert b["world_size"] == 2
    for k, want in a["model"].items():
        np.testing.assert_allclose(b["model"][k].numpy(), want.numpy(), rtol=1e-4, atol=2e-5, err_msg=k)
