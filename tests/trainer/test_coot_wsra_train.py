"""The coot and wsra methods through the `train` command: short runs on a generated store whose loss falls, the
trained heads loaded back for evaluation (presets: tests/trainer/test_train_config.py; resume and DDP:
tests/trainer/test_methods.py)."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.checkpoint import load_trained
from trainer.methods.coot.head import CootHead
from trainer.methods.wsra.head import WsraHead
from trainer.rundir import read_metrics
from trainer.train import main

QUIET = ["runtime.progress=false", "runtime.log_every=1", "runtime.checkpoint_every=1000"]


def train(store, out, preset, *overrides, extra=()):
    return main(["--store", store, "--out", str(out), "--preset", preset, *extra, *QUIET, *overrides])


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
