"""The `train` command end to end on generated stores with stg: the run directory, refusals, a non-finite loss,
two-process DDP with sub-batches and the word-level loss, and learning the generated signal (exact resume and
the plain DDP case of every method: tests/trainer/test_methods.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.store import open_store
from trainer.checkpoint import load_trained, step_checkpoints
from trainer.data import NarrationDataset, build_index, collate
from trainer.narrations import narration_table
from trainer.rundir import read_metrics
from trainer.methods.stg.selection import FrameSelector
from tests.trainer.test_methods import two_processes_equal_one
from trainer.train import main
from trainer.methods import build_head, load_train_yaml

QUIET = ["runtime.progress=false", "runtime.log_every=1"]


def train(store, out, *overrides, preset="tiny", extra=()):
    return main(["--store", store, "--out", str(out), "--preset", preset, *extra, *QUIET, *overrides])


def losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir)]


def test_run_directory_and_checkpoint_contents(synthetic_store, tmp_path, capsys):
    root = synthetic_store[0]
    assert train(root, tmp_path / "run", "optim.max_steps=4", "runtime.checkpoint_every=2") == 0
    report = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(report[-1])
    assert summary["steps"] == 4 and summary["loss_last"] is not None and "samples/s" in "\n".join(report)
    run = tmp_path / "run"
    cfg = load_train_yaml(run / "config.yaml")
    assert cfg.optim.max_steps == 4 and cfg.method == "stg" and cfg.stg.head.variant == "tiny"
    info = json.loads((run / "run.json").read_text())
    assert len(info["git"]["sha"]) in (40, 7) or info["git"]["sha"] == "unknown"
    assert info["store"] == root and info["encoder_spec"]["model"] == "synthetic"
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(np.isfinite(m["loss"]) and {"loss_local", "loss_global", "lr"} <= m.keys() for m in metrics)
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    assert [p.name for p in step_checkpoints(run)] == ["step-00000002.pt", "step-00000004.pt"]
    state = torch.load(step_checkpoints(run)[-1], weights_only=True)   # plain containers only
    assert state["step"] == 4 and {"model", "optimizer", "scheduler", "rng", "config"} <= state.keys()
    trained = load_trained(run)
    assert trained.step == 4 and not trained.head.training and trained.config == cfg
    batch = collate(NarrationDataset(root, build_index(open_store(root), cfg.data), cfg.data).__getitems__([0, 1]))
    heat = trained.head.rollout(batch["grid"][:, :4].float(), batch["words"][0].float(), batch["word_mask"][0])
    assert heat.shape == (2, 4, 7, 7)
    emb = trained.head.global_video(batch["global"].float(), batch["frame_mask"])
    assert emb.shape == (2, 32)


def test_refusals(synthetic_store, tmp_path, capsys):
    root = synthetic_store[0]
    assert train(root, tmp_path / "a", preset="paper-clip") == 2
    err = capsys.readouterr().err
    assert "preset 'paper-clip'" in err and "clip.model: store has 'synthetic', wanted 'clip-vit-b-32'" in err
    assert "clip.dims.global: store has 16, wanted 512" in err
    assert train(root, tmp_path / "b", "optim.lrr=1") == 2
    assert "unknown key 'optim.lrr'; valid keys in optim: optim.name, optim.lr" in capsys.readouterr().err
    assert train(root, tmp_path / "c", "optim.max_steps=1") == 0
    assert train(root, tmp_path / "c", "optim.max_steps=1") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "c"), "--resume", "optim.lr=1"]) == 2
    assert "only runtime.* overrides" in capsys.readouterr().err
    assert train(root, tmp_path / "d", "data.encoder=s3d", "data.fps=null", "data.candidates=4") == 2
    assert "grid: store has [2, 7, 7], wanted [7, 7]" in capsys.readouterr().err


def test_a_non_finite_loss_stops_the_run_with_a_clear_message(synthetic_store, tmp_path, capsys):
    assert train(synthetic_store[0], tmp_path / "run", "optim.lr=1e30", "optim.warmup_steps=0",
                 "optim.max_steps=20") == 3
    err = capsys.readouterr().err
    assert "the loss is not finite" in err and "optim.clip_grad" in err
    assert len(losses(tmp_path / "run")) < 20


@pytest.mark.slow
def test_two_processes_give_the_single_process_losses_with_sub_batches_and_the_word_loss(synthetic_store, tmp_path):
    """stg's own DDP case (the contract test covers the batch-wide local loss): local loss over sub-batches of 4
    and the word-level loss, 2 ranks x 4 samples vs 1 process x 8."""
    two_processes_equal_one(synthetic_store[0], tmp_path, "tiny", ["optim.max_steps=4", "stg.loss.local_group=4",
                                                                     "stg.head.word_values=true",
                                                                     "stg.loss.word_weight=0.5"])


def _grounding(head, cfg, root, truth) -> tuple[int, float, float]:
    """(rollout argmax inside the event block: count, chance count, share of selected frames in the event)."""
    store = open_store(root)
    index = build_index(store, cfg.data)
    table = narration_table(store, index, cfg.data)
    batch = collate(NarrationDataset(root, index, cfg.data).__getitems__(list(range(len(index)))))
    head.eval()
    sel = FrameSelector(cfg.stg.selection)(batch, *head.selection_projections())
    hits, chance, kept = 0, 0.0, []
    for b, j in enumerate(batch["index"].tolist()):
        _, start, end, row, col, _ = truth.events[table["caption_id"][j]]
        times = table["lo"][j] + np.arange(cfg.data.candidates) / table["rate"][j]
        inside = (times >= start) & (times < end) & batch["frame_mask"][b].numpy()
        if not inside.any():  # the event lies outside this narration's window
            continue
        kept.append(inside[sel.index[b].numpy()].mean())
        frames = np.flatnonzero(inside)[:4]
        heat = head.rollout(batch["grid"][b, frames][None].float(), batch["words"][b].float(),
                            batch["word_mask"][b])[0].sum(0)
        r, c = divmod(int(heat.argmax()), 7)
        hits += (row <= r < row + 3) and (col <= c < col + 3)
        chance += 9 / 49
    return hits, chance, float(np.mean(kept))


@pytest.mark.slow
def test_training_learns_the_generated_signal(tmp_path):
    """Text features are a random rotation of the video ones, so nothing matches before training. After 120
    steps the loss has fallen, the rollout heatmap peaks inside the narrated event's block far above chance
    (and above the untrained head), and projected Sinkhorn selection keeps more event frames than before."""
    from trainer.synthetic import SyntheticSpec, write_synthetic_store

    root = str(tmp_path / "store.zarr")
    truth = write_synthetic_store(root, SyntheticSpec(videos=8, dim=32, seed=1, unaligned=True))
    run = tmp_path / "run"
    assert train(root, run, "optim.max_steps=120", "optim.lr=1e-2", "optim.warmup_steps=5",
                 "runtime.log_every=5") == 0
    curve = [r["loss_local"] for r in read_metrics(run)]
    assert np.mean(curve[-4:]) < 0.5 * curve[0]
    trained = load_trained(run)
    torch.manual_seed(trained.config.seed)                              # the run's initial weights
    initial = build_head(trained.config, {k: 32 for k in ("global", "grid", "sentence", "words")})
    before = _grounding(initial, trained.config, root, truth)
    after = _grounding(trained.head, trained.config, root, truth)
    assert after[0] > max(2 * after[1], before[0] + 3), f"rollout hits {after[0]} (untrained {before[0]}, " \
                                                        f"chance {after[1]:.1f})"
    assert after[2] > before[2] + 0.1, f"event frames kept: {after[2]:.2f} (untrained {before[2]:.2f})"


SMALL = ["data.expect={}", "data.batch_size=8", "data.sampling=per_narration", "data.workers=0",
         "optim.max_steps=2", "optim.warmup_steps=1"]


BOTH = {"loss_local", "loss_global"}


@pytest.mark.parametrize("preset,overrides,terms", [
    ("reference", ["stg.loss.local_group=4"], BOTH),
    ("paper-s3d", ["data.candidates=8"], BOTH),
    ("comma", ["data.window_s=2", "comma.loss.local_group=0"], {"loss_local"}),
    ("comma", ["data.window_s=2", "comma.head.word_values=true", "comma.loss.word_weight=1",
               "comma.loss.local_weight=0"], {"loss_word"}),
    ("paper-clip", ["stg.selection.method=topk", "stg.selection.video=regions", "stg.head.layers=[self,cross]",
                    "stg.loss.normalize=true", "stg.loss.temperature=0.07", "optim.clip_grad=1.0",
                    "stg.head.pair_chunk=3"], BOTH),
    ("paper-clip", ["stg.selection.method=none", "stg.head.global_pool=max", "stg.head.global_text=max_words",
                    "optim.schedule=constant"], BOTH),
], ids=["reference", "paper-s3d", "comma", "comma-word-loss", "ablations-1", "ablations-2"])
def test_presets_and_options_train_on_the_synthetic_store(synthetic_store, tmp_path, preset, overrides, terms):
    method = "comma" if preset == "comma" else "stg"
    assert train(synthetic_store[0], tmp_path / "run", *SMALL, f"{method}.head.variant=tiny", *overrides,
                 preset=preset) == 0
    metrics = read_metrics(tmp_path / "run")
    assert len(metrics) == 2 and all(np.isfinite(m["loss"]) for m in metrics)
    assert {k for k in metrics[0] if k.startswith("loss_")} == terms
