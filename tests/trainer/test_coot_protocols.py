"""COOT's training protocols: frames drawn at random within each interval in training and the centres at
evaluation (seeded by the batch), reduce-on-plateau and early stopping on a held-out validation split (against
torch's ReduceLROnPlateau, on a tiny run, and exact on resume), and warmup given in epochs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.config import ConfigError
from pipeline.store import open_store
from trainer.checkpoint import load_checkpoint
from trainer.data import build_index, place_rows
from trainer.methods import load_train_config
from trainer.methods.coot.dataset import CootDataset, interval_picks, window_rows
from trainer.methods.coot.step import recall_at_1
from trainer.optim import Plateau, Schedule, warmup_steps
from trainer.rundir import read_metrics
from trainer.train import main
from trainer.train_config import OptimConfig
from trainer.validation import split

QUIET = ["runtime.progress=false", "runtime.log_every=1"]


# ---- frames within intervals ----------------------------------------------------------------------------------
def test_interval_picks_centre_and_random_stay_in_their_interval():
    assert interval_picks(10, 4).tolist() == [1, 3, 6, 8]                 # centres of [0,2.5), [2.5,5), ...
    assert interval_picks(3, 5).tolist() == [0, 1, 2]                    # fewer items than intervals: all
    rng = np.random.default_rng(0)
    for n, k in [(10, 4), (200, 16), (81, 80), (7, 6)]:
        seen = np.zeros(n, bool)
        for _ in range(200):
            picks = interval_picks(n, k, rng.random(k))
            for j, p in enumerate(picks):                                 # the item under a point of interval j
                assert math.floor(j * n / k) <= p < math.ceil((j + 1) * n / k), (n, k, j, p)
            seen[picks] = True
        assert seen.all()                                                 # every item can be drawn


def test_window_slots_centred_equal_the_stg_placement_and_random_ones_stay_in_the_slot():
    times = np.arange(0, 40, 0.2)                                         # 5 fps
    for lo in (-3.0, 0.1, 7.3, 37.0):
        want = place_rows(times, lo, 2.0, 5.0, 16)[0]
        assert np.array_equal(window_rows(times, lo, 2.0, 5.0, 16), want)
        assert np.array_equal(window_rows(times, lo, 2.0, 5.0, 16, np.full(16, 0.5)), want)
        got = window_rows(times, lo, 2.0, 5.0, 16, np.random.default_rng(1).random(16))
        slots = lo + np.arange(16) / 2.0
        ok = got >= 0
        assert np.all(np.abs(times[got[ok]] - slots[ok]) <= 0.25 + 0.1 + 1e-9)   # half a slot + half a period


@pytest.fixture(scope="module")
def items(synthetic_store):
    root = synthetic_store[0]
    cfg = load_train_config("coot-tiny")
    index = build_index(open_store(root), cfg.data)
    return root, cfg, index


def test_training_items_are_random_seeded_by_the_batch_and_centred_at_evaluation(items):
    root, cfg, index = items
    batch = [int(index.first[0]), int(index.first[2]), int(index.first[4])]
    one = CootDataset(root, index, cfg.data, cfg.coot.data, seed=1).__getitems__(batch)
    again = CootDataset(root, index, cfg.data, cfg.coot.data, seed=1).__getitems__(batch)
    assert all(np.array_equal(one[k], again[k]) for k in one)             # a function of seed and batch
    other_seed = CootDataset(root, index, cfg.data, cfg.coot.data, seed=2).__getitems__(batch)
    other_batch = CootDataset(root, index, cfg.data, cfg.coot.data, seed=1).__getitems__(batch[::-1])
    assert not np.array_equal(one["video_frames"], other_seed["video_frames"])
    assert not np.array_equal(one["video_frames"], other_batch["video_frames"][::-1])
    evaluation = CootDataset(root, index, cfg.data, cfg.coot.data, seed=1)
    evaluation.training = False
    centre = load_train_config("coot-tiny", ["coot.data.frames=centre"])
    centred = CootDataset(root, index, centre.data, centre.coot.data, seed=1).__getitems__(batch)
    got = evaluation.__getitems__(batch)
    assert all(np.array_equal(got[k], centred[k]) for k in got)
    frames = open_store(root).frames(index.videos[0], "clip", fields=("global",))["global"]
    n, k = len(frames), cfg.coot.data.video_frames
    assert np.array_equal(got["video_frames"][0], frames[interval_picks(n, k)])
    for j in range(k):                                                    # training: a frame of interval j
        lo, hi = math.floor(j * n / k), math.ceil((j + 1) * n / k)
        assert any(np.array_equal(one["video_frames"][0, j], f) for f in frames[lo:hi])


# ---- reduce-on-plateau and early stopping -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["min", "max"])
def test_plateau_reductions_follow_torch_reduce_lr_on_plateau(seed, mode):
    rng = np.random.default_rng(seed)
    patience, cooldown, factor = int(rng.integers(0, 4)), int(rng.integers(0, 3)), float(rng.choice([0.1, 0.5]))
    cfg = OptimConfig(schedule="plateau", val_videos=1, monitor_mode=mode, plateau_patience=patience,
                      plateau_cooldown=cooldown, plateau_factor=factor, plateau_threshold=1e-4, warmup_steps=0)
    ours = Plateau(cfg)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience,
                                                        cooldown=cooldown, threshold=1e-4, eps=0.0)
    values = np.round(rng.random(40), 1)                                 # repeats: plateaus
    for v in values:
        ours.observe(float(v))
        theirs.step(float(v))
        assert ours.scale == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)


def test_early_stopping_counts_epochs_since_the_best():
    cfg = OptimConfig(schedule="constant", val_videos=1, early_stop=3, monitor_mode="max")
    p = Plateau(cfg)
    for v, stale, stopped in [(1.0, 0, False), (2.0, 0, False), (2.0, 1, False), (1.5, 2, False), (3.0, 0, False),
                              (float("nan"), 1, False), (2.9, 2, False), (2.9, 3, True)]:
        p.observe(v)
        assert (p.stale, p.stopped, p.scale) == (stale, stopped, 1.0)


def test_schedule_options_are_checked():
    with pytest.raises(ConfigError, match="val_videos"):
        OptimConfig(schedule="plateau")
    with pytest.raises(ConfigError, match="val_videos"):
        OptimConfig(early_stop=5)
    with pytest.raises(ConfigError, match="plateau_factor"):
        OptimConfig(plateau_factor=1.0)
    with pytest.raises(ConfigError, match="both set"):
        OptimConfig(warmup_epochs=1)                                     # warmup_steps defaults to 5000
    cfg = load_train_config("coot")                                      # the paper's schedule (appendix A.1)
    o = cfg.optim
    assert (o.name, o.schedule, o.plateau_factor, o.plateau_patience, o.plateau_cooldown, o.early_stop) == \
        ("radam", "plateau", 0.1, 5, 3, 15)
    assert (o.monitor, o.monitor_mode, o.warmup_steps, o.warmup_epochs, cfg.coot.data.frames) == \
        ("clip_r1_sum", "max", 0, 0.0, "random")


def test_validation_split_is_from_the_seed_and_disjoint(items):
    _, _, index = items
    train, held = split(index, 2, seed=1)
    again_train, again_held = split(index, 2, seed=1)
    assert list(held.videos) == list(again_held.videos) and len(held.videos) == 2
    assert set(train.videos) | set(held.videos) == set(index.videos) and not set(train.videos) & set(held.videos)
    v = list(index.videos).index(held.videos[0])
    assert held.counts[0] == index.counts[v] and len(train) + len(held) == len(index)
    with pytest.raises(ConfigError, match="val_videos"):
        split(index, len(index.videos), seed=1)


def test_recall_at_1_counts_ties_against_the_query():
    s = torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.5, 0.0], [0.1, 0.3, 0.2]])
    assert recall_at_1(s) == pytest.approx(100 / 3)                      # row 1 ties, row 2 loses
    assert recall_at_1(s.T) == pytest.approx(200 / 3)                    # column 2 ties


PLATEAU = ["data.batch_size=2", "optim.val_videos=2", "optim.schedule=plateau", "optim.plateau_patience=0",
           "optim.plateau_cooldown=0", "optim.plateau_threshold=10", "optim.early_stop=2", "optim.epochs=10",
           "optim.monitor=loss", "optim.monitor_mode=min", "runtime.checkpoint_every=0"]


def train(store, out, *overrides, extra=()):
    return main(["--store", store, "--out", str(out), "--preset", "coot-tiny", *extra, *QUIET, *overrides])


def test_plateau_and_early_stopping_on_a_tiny_run(synthetic_store, tmp_path):
    # 6 videos: 2 held out, 4 train (2 steps per epoch); a threshold of 10 x |best| is never beaten, so after
    # the first epoch every one is bad: a reduction each epoch (patience 0), and the stop after 2 stale epochs.
    run = tmp_path / "run"
    assert train(synthetic_store[0], run, *PLATEAU) == 0
    rows = read_metrics(run)
    val = [r for r in rows if "val_loss" in r]
    steps = [r for r in rows if "loss" in r]
    assert [r["epoch"] for r in val] == [1, 2, 3] and [r["step"] for r in val] == [2, 4, 6]
    assert [r["plateau_reductions"] for r in val] == [0, 1, 2] and [r["early_stopped"] for r in val] == [0, 0, 1]
    assert len(steps) == 6                                                # stopped before epoch 10
    lr = 1e-3
    assert [r["lr"] for r in steps] == pytest.approx([lr] * 4 + [lr * 0.1] * 2)   # epoch 2's reduction
    assert [r["lr_next"] for r in val] == pytest.approx([lr, lr * 0.1, lr * 0.01])
    assert {"val_clip_r1_sum", "val_video_r1_sum"} <= set(val[0])
    state = load_checkpoint(run)
    assert state["scheduler"]["plateau"]["stopped"] and state["step"] == 6
    assert main(["--out", str(run), "--resume", "runtime.progress=false"]) == 0      # a stopped run stays stopped
    assert load_checkpoint(run)["step"] == 6


@pytest.mark.parametrize("stop_after", [3, 4])                          # mid-epoch, and exactly at an epoch end
def test_plateau_state_is_exact_on_resume(synthetic_store, tmp_path, stop_after):
    overrides = [*PLATEAU, "optim.plateau_threshold=0", "optim.early_stop=3", "optim.epochs=4"]
    assert train(synthetic_store[0], tmp_path / "whole", *overrides) == 0
    assert train(synthetic_store[0], tmp_path / "split", *overrides, extra=["--stop-after", str(stop_after)]) == 0
    assert main(["--out", str(tmp_path / "split"), "--resume", "runtime.progress=false"]) == 0
    whole, part = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    drop = ("samples_per_s", "data_wait")
    assert [{k: v for k, v in r.items() if k not in drop} for r in part] == \
        [{k: v for k, v in r.items() if k not in drop} for r in whole]
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert a["scheduler"] == b["scheduler"] and a["step"] == b["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# ---- warmup in epochs ---------------------------------------------------------------------------------------------
def test_warmup_epochs_become_steps_of_the_loader():
    cfg = OptimConfig(warmup_steps=0, warmup_epochs=2, schedule="constant", lr=1.0)
    assert warmup_steps(cfg, 3) == 6 and warmup_steps(OptimConfig(warmup_steps=7), 3) == 7
    assert warmup_steps(OptimConfig(warmup_steps=0, warmup_epochs=0.5), 5) == 2      # round(2.5): banker's
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = Schedule(opt, cfg, total_steps=20, steps_per_epoch=3)
    got = []
    for _ in range(8):
        got.append(opt.param_groups[0]["lr"])
        sched.step()
    assert got == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1, 1])


def test_warmup_epochs_in_a_run(synthetic_store, tmp_path):
    run = tmp_path / "run"
    assert train(synthetic_store[0], run, "data.batch_size=2", "optim.warmup_epochs=1", "optim.max_steps=5") == 0
    lr = [r["lr"] for r in read_metrics(run)]                            # 6 videos / 2 = 3 steps per epoch
    assert lr == pytest.approx([0, 1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3])
    assert train(synthetic_store[0], tmp_path / "bad", "optim.warmup_epochs=1", "optim.warmup_steps=10") == 2
