"""The `train` command end to end on generated stores: the run directory, exact resume, refusals, a
non-finite loss, two-process DDP (gloo) against one process, and learning the generated signal."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from pipeline.store import open_store
from trainer.checkpoint import load_checkpoint, load_trained, step_checkpoints
from trainer.config import load_yaml
from trainer.data import NarrationDataset, build_index, collate
from trainer.narrations import narration_table
from trainer.rundir import read_metrics
from trainer.selection import FrameSelector
from trainer.train import main
from trainer.train_config import TrainConfig

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
    cfg = load_yaml(TrainConfig, run / "config.yaml")
    assert cfg.optim.max_steps == 4 and cfg.head.variant == "tiny"
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


def test_resumed_run_continues_exactly(synthetic_store, tmp_path):
    root = synthetic_store[0]
    steps = ["optim.max_steps=7", "optim.warmup_steps=3"]
    assert train(root, tmp_path / "whole", *steps) == 0
    assert train(root, tmp_path / "split", *steps, extra=["--stop-after", "4"]) == 0
    assert len(losses(tmp_path / "split")) == 4
    assert main(["--out", str(tmp_path / "split"), "--resume", "runtime.progress=false"]) == 0
    assert losses(tmp_path / "split") == losses(tmp_path / "whole")           # bit for bit
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


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


def _ddp_worker(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if main(argv) != 0:
        raise SystemExit(f"rank {rank} failed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [["loss.local_group=0"],
                                       ["loss.local_group=4", "head.word_values=true", "loss.word_weight=0.5"]],
                         ids=["batch-local-loss", "sub-batches+word-loss"])
def test_two_processes_give_the_single_process_losses(synthetic_store, tmp_path, overrides):
    """2 ranks x 4 samples vs 1 process x 8: same global batches, same losses and weights (gloo, CPU)."""
    root = synthetic_store[0]
    argv = ["--store", root, "--preset", "tiny", *QUIET, "optim.max_steps=4", "optim.warmup_steps=0", *overrides]
    assert main(["--out", str(tmp_path / "one"), *argv]) == 0
    mp.spawn(_ddp_worker, args=(2, _free_port(), ["--out", str(tmp_path / "two"), *argv]), nprocs=2, join=True)
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-5)
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert two["world_size"] == 2
    for k, want in one["model"].items():
        got = two["model"][k]
        if k.endswith("in_proj_bias"):  # the key bias: zero gradient in exact arithmetic, so Adam turns float
            d = want.shape[0] // 3      # noise into lr-sized steps of either sign; compare query and value biases
            got, want = torch.cat([got[:d], got[2 * d:]]), torch.cat([want[:d], want[2 * d:]])
        torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5)


def _grounding(head, cfg, root, truth) -> tuple[int, float, float]:
    """(rollout argmax inside the event block: count, chance count, share of selected frames in the event)."""
    store = open_store(root)
    index = build_index(store, cfg.data)
    table = narration_table(store, index, cfg.data)
    batch = collate(NarrationDataset(root, index, cfg.data).__getitems__(list(range(len(index)))))
    head.eval()
    sel = FrameSelector(cfg.selection)(batch, *head.selection_projections())
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
    from trainer.heads import build_head
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
    initial = build_head(trained.config.head, {k: 32 for k in ("global", "grid", "sentence", "words")})
    before = _grounding(initial, trained.config, root, truth)
    after = _grounding(trained.head, trained.config, root, truth)
    assert after[0] > max(2 * after[1], before[0] + 3), f"rollout hits {after[0]} (untrained {before[0]}, " \
                                                        f"chance {after[1]:.1f})"
    assert after[2] > before[2] + 0.1, f"event frames kept: {after[2]:.2f} (untrained {before[2]:.2f})"


SMALL = ["data.expect={}", "head.variant=tiny", "data.batch_size=8", "data.sampling=per_narration",
         "data.workers=0", "optim.max_steps=2", "optim.warmup_steps=1"]


BOTH = {"loss_local", "loss_global"}


@pytest.mark.parametrize("preset,overrides,terms", [
    ("reference", ["loss.local_group=4"], BOTH),
    ("paper-s3d", ["data.candidates=8"], BOTH),
    ("comma", ["data.window_s=2", "loss.local_group=0"], {"loss_local"}),
    ("comma", ["data.window_s=2", "head.word_values=true", "loss.word_weight=1", "loss.local_weight=0"],
     {"loss_word"}),
    ("paper-clip", ["selection.method=topk", "selection.video=regions", "head.layers=[self,cross]",
                    "loss.normalize=true", "loss.temperature=0.07", "optim.clip_grad=1.0", "head.pair_chunk=3"], BOTH),
    ("paper-clip", ["selection.method=none", "head.global_pool=max", "head.global_text=max_words",
                    "optim.schedule=constant"], BOTH),
], ids=["reference", "paper-s3d", "comma", "comma-word-loss", "ablations-1", "ablations-2"])
def test_presets_and_options_train_on_the_synthetic_store(synthetic_store, tmp_path, preset, overrides, terms):
    assert train(synthetic_store[0], tmp_path / "run", *SMALL, *overrides, preset=preset) == 0
    metrics = read_metrics(tmp_path / "run")
    assert len(metrics) == 2 and all(np.isfinite(m["loss"]) for m in metrics)
    assert {k for k in metrics[0] if k.startswith("loss_")} == terms
