"""Bad run directories and configs end in one error line naming the file and the problem, with exit code 2:
a truncated newest checkpoint falls back to the previous one (and says so) for `--resume` and for evaluation's
loading; another head's checkpoint, a broken config.yaml or run.json, and numeric settings out of bounds are
refused."""
from __future__ import annotations

import json
import shutil

import pytest

from trainer.checkpoint import CheckpointError, load_trained, step_checkpoints
from pipeline.config import ConfigError
from trainer.train import main
from trainer.methods import all_presets, load_train_config, load_train_yaml

QUIET = ["runtime.progress=false", "runtime.log_every=1"]


@pytest.fixture(scope="module")
def runs(synthetic_store, tmp_path_factory):
    """(store, an stg run with checkpoints at steps 2 and 4, a coot run with one checkpoint)."""
    root = tmp_path_factory.mktemp("runs")
    store = synthetic_store[0]
    stg, coot = root / "stg", root / "coot"
    assert main(["--store", store, "--out", str(stg), "--preset", "tiny", *QUIET, "optim.max_steps=4",
                 "runtime.checkpoint_every=2"]) == 0
    assert main(["--store", store, "--out", str(coot), "--preset", "coot-tiny", *QUIET, "optim.max_steps=1"]) == 0
    return store, stg, coot


def _copy(run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def _one_error(err: str, *names: str) -> None:
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("trainer: error: "), err
    assert all(name in lines[0] for name in names), err


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    newest = step_checkpoints(run)[-1]
    _truncate(newest)
    capsys.readouterr()
    trained = load_trained(run)
    assert trained.step == 2 and trained.path.endswith("step-00000002.pt")
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {newest}: unreadable checkpoint, truncated or corrupt")
    assert "falling back to step-00000002.pt" in err and len(err.strip().splitlines()) == 1
    assert main(["--out", str(run), "--resume", *QUIET]) == 0  # steps 3 and 4 again, from step 2
    assert "falling back to step-00000002.pt" in capsys.readouterr().err
    assert load_trained(run).step == 4 and [json.loads(x)["step"] for x in
                                            (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_no_readable_checkpoint_is_an_error(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    for path in step_checkpoints(run):
        _truncate(path, 0.1)
    assert main(["--out", str(run), "--resume", *QUIET]) == 2
    _one_error(capsys.readouterr().err, str(run), "no readable checkpoint")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_trained(step_checkpoints(run)[-1])


def test_another_heads_checkpoint_is_refused(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    foreign = run / "checkpoints" / "step-00000009.pt"
    shutil.copy(step_checkpoints(runs[2])[-1], foreign)
    assert main(["--out", str(run), "--resume", *QUIET]) == 2
    _one_error(capsys.readouterr().err, str(foreign), "method is 'coot'", str(run / "config.yaml"), "'stg'")
    with pytest.raises(CheckpointError, match="not a checkpoint of this run: its method is 'coot'"):
        load_trained(run)
    assert load_trained(foreign).config.method == "coot"  # named explicitly, the file is what it says


@pytest.mark.parametrize("text, problem", [("optim: {lr: [\n", "not valid YAML at line 2"),
                                           ("- 1\n- 2\n", "expected a mapping of keys, got list"),
                                           ("optim: {lrr: 1}\n", "unknown key 'optim.lrr'"),
                                           (b"\xff\xfe\n", "cannot read it")])
def test_a_broken_config_yaml_is_named(runs, tmp_path, capsys, text, problem):
    run = _copy(runs[1], tmp_path)
    config = run / "config.yaml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["--out", str(run), "--resume", *QUIET]) == 2
    _one_error(capsys.readouterr().err, str(config), problem)
    with pytest.raises(ConfigError, match=problem):
        load_trained(run)
    with pytest.raises(ConfigError, match=problem):
        load_train_yaml(config)


def test_a_broken_run_json_or_preset_is_named(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    (run / "run.json").write_text("{")
    assert main(["--out", str(run), "--resume", *QUIET]) == 2
    _one_error(capsys.readouterr().err, str(run / "run.json"), "pass --store")
    preset = tmp_path / "broken.yaml"
    preset.write_text("optim: [\n")
    assert main(["--store", runs[0], "--out", str(tmp_path / "new"), "--preset", str(preset), *QUIET]) == 2
    _one_error(capsys.readouterr().err, str(preset), "not valid YAML")


def test_a_negative_learning_rate_is_refused(runs, tmp_path, capsys):
    assert main(["--store", runs[0], "--out", str(tmp_path / "run"), "--preset", "tiny", *QUIET,
                 "optim.lr=-1"]) == 2
    _one_error(capsys.readouterr().err, "optim.lr must be >= 0, got -1.0")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, message", [
    ("optim.lr=nan", "optim.lr must be >= 0"), ("optim.lr=inf", "optim.lr must be >= 0"),
    ("optim.weight_decay=-0.1", "optim.weight_decay must be >= 0"), ("optim.eps=0", "optim.eps must be > 0"),
    ("optim.warmup_steps=-1", "optim.warmup_steps must be >= 0"), ("optim.epochs=0", "optim.epochs must be >= 1 when"),
    ("optim.epochs=-1", "optim.epochs must be >= 0"), ("optim.max_steps=-3", "optim.max_steps must be >= 0"),
    ("optim.clip_grad=-1", "optim.clip_grad must be >= 0"),
    ("optim.betas=[0.9,1.5]", "optim.betas must each lie in [0, 1)"),
    ("data.batch_size=1", "data.batch_size must be >= 2"), ("data.workers=-1", "data.workers must be >= 0"),
    ("data.prefetch=0", "data.prefetch must be >= 1"), ("data.window_s=nan", "data.window_s must be > 0"),
    ("data.store_fps=0", "data.store_fps must be > 0"), ("data.candidates=0", "data.candidates must be >= 1"),
    ("data.caption_cache=-1", "data.caption_cache must be >= 0"),
    ("data.sample_cache_mb=-1", "data.sample_cache_mb must be >= 0"),
    ("stg.selection.epsilon=nan", "selection.epsilon must be > 0"),
    ("stg.selection.keep=0", "selection.keep must be >= 1"),
    ("stg.head.heads=0", "head.heads must be >= 1"), ("stg.head.dim=0", "head.dim must be >= 1"),
    ("stg.head.pair_chunk=-1", "head.pair_chunk must be >= 0"),
    ("stg.loss.temperature=0", "loss.temperature must be > 0"), ("stg.loss.margin=nan", "loss.margin must be a finite"),
    ("stg.loss.global_weight=-1", "loss.global_weight must be >= 0"),
    ("runtime.log_every=0", "runtime.log_every must be >= 1"),
    ("runtime.keep_checkpoints=-1", "runtime.keep_checkpoints must be >= 0"),
    ("runtime.checkpoint_every=-5", "runtime.checkpoint_every must be >= 0"),
    ("runtime.workers=-2", "runtime.workers must be >= 0"), ("seed=-1", "seed must lie in [0, 2**32)"),
])
def test_numeric_settings_are_bounded(override, message):
    with pytest.raises(ConfigError) as info:
        load_train_config("tiny", [override])
    assert message in str(info.value)


def test_every_preset_is_within_bounds():
    for preset in all_presets():
        load_train_config(preset)
