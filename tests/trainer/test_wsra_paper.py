"""The `wsra-paper` preset: WSRA's scoring function and ins-VAS margin as the paper writes them (Sec. 3.1 under
eq. 2: phi = Sigmoid(FC(Cat(v, t))), one linear layer; eq. 6: the margin m inside every snippet's hinge), the
other values of the `wsra` preset unchanged; the ins-VAS term against a slow loop and a hand case in both margin
forms; a few training steps through the `train` command on the generated store."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import to_dict
from trainer.checkpoint import load_trained
from trainer.methods import all_presets, load_train_config
from trainer.methods.wsra.losses import instance_loss
from trainer.rundir import read_metrics
from trainer.train import main

# the generated store is not CLIP ViT-B/32: the data section of wsra-tiny, and a batch its 24 narrations fill
SMALL_STORE = ["data.expect={}", "data.window_s=8.0", "data.fps=2.0", "data.candidates=16", "data.batch_size=8",
               "data.workers=0", "wsra.data.video_frames=32", "wsra.loss.top_k=1", "wsra.loss.last_k=1",
               "runtime.progress=false", "runtime.log_every=1", "runtime.checkpoint_every=1000"]


def test_preset_is_registered_and_says_what_the_paper_says():
    assert "wsra-paper" in all_presets()
    paper, ours = load_train_config("wsra-paper"), load_train_config("wsra")
    head, loss = paper.wsra.head, paper.wsra.loss
    assert paper.method == "wsra" and head.score_layers == 0 and head.attention_temperature == 1.0   # eq. 2
    assert loss.instance_margin_split is False and loss.instance_weights == "frames"                 # eq. 6
    assert ours.wsra.head.score_layers == 1 and ours.wsra.loss.instance_margin_split is True
    # Sec. 3.4 and 4.1, Fig. 5, eq. 10, eq. 11 weights, as in `wsra`
    assert (paper.optim.name, paper.optim.lr, paper.optim.schedule, paper.data.batch_size) == ("adam", 1e-4,
                                                                                                "constant", 42)
    assert (loss.top_k, loss.last_k, loss.crov_threshold) == (3, 2, 0.9)
    assert (loss.instance_weight, loss.background_weight, loss.vas_weight, loss.crov_weight) == (1.0, 0.1, 0.1, 0.1)
    differ = {k for k, v in to_dict(paper)["wsra"]["head"].items() if to_dict(ours)["wsra"]["head"][k] != v}
    differ |= {k for k, v in to_dict(paper)["wsra"]["loss"].items() if to_dict(ours)["wsra"]["loss"][k] != v}
    assert differ == {"score_layers", "instance_margin_split"}
    assert to_dict(paper)["data"] == to_dict(ours)["data"] and to_dict(paper)["optim"] == to_dict(ours)["optim"]


def slow_instance(pos, neg, mask, has, margin, split):
    rows = []
    for b in range(pos.shape[0]):
        if not has[b]:
            continue
        valid = [t for t in range(pos.shape[1]) if mask[b, t]]
        m = margin / len(valid) if split else margin
        rows.append(sum(max(0.0, m + float(neg[b, t]) - float(pos[b, t])) for t in valid))
    return sum(rows) / max(len(rows), 1)


def test_instance_loss_margin_forms_against_a_slow_loop_and_by_hand():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.rand(5, 7, generator=g) * 0.3, torch.rand(5, 7, generator=g) * 0.3
    mask = torch.rand(5, 7, generator=g) > 0.3
    mask[:, 0] = True
    has = torch.tensor([True, True, False, True, True])
    for split in (True, False):
        got = instance_loss(pos, neg, mask, has, 0.2, split)
        assert got.item() == pytest.approx(slow_instance(pos, neg, mask, has, 0.2, split), rel=1e-5)
    # by hand: 4 valid snippets, pos 0.3, neg 0.1, m 0.3: eq. 6 as written 4 x (0.3 + 0.1 - 0.3) = 0.4; split,
    # each hinge max(0, 0.075 + 0.1 - 0.3) = 0
    p, n, k = torch.full((1, 4), 0.3), torch.full((1, 4), 0.1), torch.ones(1, 4, dtype=torch.bool)
    one = torch.ones(1, dtype=torch.bool)
    assert instance_loss(p, n, k, one, 0.3, split=False).item() == pytest.approx(4 * 0.1)
    assert instance_loss(p, n, k, one, 0.3, split=True).item() == pytest.approx(0.0)


def test_wsra_paper_trains_a_few_steps(synthetic_store, tmp_path):
    run = tmp_path / "run"
    assert main(["--store", synthetic_store[0], "--out", str(run), "--preset", "wsra-paper", *SMALL_STORE,
                 "wsra.head.variant=tiny", "optim.max_steps=4", "optim.lr=1e-2"]) == 0
    metrics = read_metrics(run)
    assert len(metrics) == 4 and all(np.isfinite(m["loss"]) for m in metrics)
    assert {k[5:] for k in metrics[0] if k.startswith("loss_")} == {"background", "vas", "instance", "crov"}
    trained = load_trained(run)
    assert trained.config.wsra.head.score_layers == 0 and trained.config.wsra.loss.instance_margin_split is False
    assert len(trained.head.score_rest) == 0 and trained.head.score_video.out_features == 1   # one linear layer
