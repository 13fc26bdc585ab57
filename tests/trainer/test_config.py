"""The generic config mechanism: presets, inheritance, typed overrides, unknown keys, YAML round trip."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from trainer.config import ConfigError, load_config, load_yaml, preset_names, save_yaml, to_dict, valid_keys
from trainer.train_config import PRESET_DIR, TrainConfig

PRESETS = ("comma", "paper-clip", "paper-s3d", "reference", "tiny")


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Command:
    count: int = 1
    flag: bool = False
    mode: Literal["x", "y"] = "x"
    limit: float | None = None
    pair: tuple[float, float] = (1.0, 2.0)
    extra: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_overrides_are_parsed_by_field_type():
    cfg = load_config(Command, overrides=["count=3", "flag=true", "mode=y", "limit=1e-4", "pair=[3, 4]",
                                          "inner.rate=2", "inner.names=[p, q]", "extra={k: [1, 2]}"])
    assert cfg == Command(3, True, "y", 1e-4, (3.0, 4.0), {"k": [1, 2]}, Inner(2.0, ("p", "q")))
    assert isinstance(cfg.inner.rate, float) and load_config(Command, overrides=["limit=null"]).limit is None
    assert load_config(Command, overrides=["inner.names=a,b"]).inner.names == ("a", "b")


@pytest.mark.parametrize("override,message", [
    ("cuont=3", r"unknown key 'cuont'; valid keys: count, flag, mode, limit, pair, extra, inner\.rate, inner\.names"),
    ("inner.rat=1", r"unknown key 'inner\.rat'; valid keys in inner: inner\.rate, inner\.names"),
    ("count=many", r"count: expected an integer, got 'many'"),
    ("mode=z", r"mode: 'z' is not one of \['x', 'y'\]"),
    ("flag=maybe", r"flag: expected true/false"),
    ("pair=[1]", r"pair: expected 2 values, got 1"),
    ("count", r"expected KEY=VALUE"),
    ("count.x=1", r"'count' is a value, not a section"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Command, overrides=[override])


def test_presets_inherit_merge_sections_and_replace_values(tmp_path):
    (tmp_path / "base.yaml").write_text("count: 2\nextra: {a: 1, b: 2}\ninner: {rate: 3.0, names: [m]}\n")
    (tmp_path / "child.yaml").write_text("inherit: base\nextra: {c: 3}\ninner: {rate: 4.0}\n")
    cfg = load_config(Command, "child", ["count=5"], tmp_path)
    assert (cfg.count, cfg.extra, cfg.inner) == (5, {"c": 3}, Inner(4.0, ("m",)))  # dict value replaced
    (tmp_path / "bad.yaml").write_text("inner: {nope: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'inner\.nope' in section 'inner'; valid keys: inner\.rate"):
        load_config(Command, "bad", [], tmp_path)
    with pytest.raises(ConfigError, match=r"unknown preset 'missing': choose one of \['bad', 'base', 'child'\]"):
        load_config(Command, "missing", [], tmp_path)
    (tmp_path / "loop.yaml").write_text("inherit: loop\n")
    with pytest.raises(ConfigError, match="inherits from itself"):
        load_config(Command, "loop", [], tmp_path)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_and_round_trips_through_yaml(preset, tmp_path):
    cfg = load_config(TrainConfig, preset, [], PRESET_DIR)
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_yaml(TrainConfig, tmp_path / "config.yaml") == cfg
    assert to_dict(cfg)["data"]["encoder"] == cfg.data.encoder


def test_presets_set_the_documented_paper_and_code_values():
    assert set(PRESETS) <= set(preset_names(PRESET_DIR))
    paper = load_config(TrainConfig, "paper-clip", [], PRESET_DIR)
    code = load_config(TrainConfig, "reference", [], PRESET_DIR)
    assert (paper.data.candidates, paper.data.fps, paper.selection.keep, paper.data.batch_size) == (80, 5.0, 16, 64)
    assert (code.data.candidates, code.data.fps, code.selection.keep, code.data.anchor) == (16, 1.0, 8, "start")
    assert (code.loss.form, code.loss.local_group, code.loss.group_reduce) == ("milnce", 16, "sum")
    assert (code.head.eval_score, code.head.eval_residual, code.head.global_frames) == ("dot", "none", "all")
    assert (paper.head.eval_score, paper.head.global_frames, paper.loss.form) == ("scaled_dot", "selected", "symmetric")
    assert code.optim.name == "adamw" and code.optim.weight_decay == 0.01 and paper.optim.name == "adam"
    comma = load_config(TrainConfig, "comma", [], PRESET_DIR)
    assert comma.head.name == "comma" and comma.loss.global_weight == 0 and comma.data.encoder == "s3d"


def test_train_config_cross_checks():
    with pytest.raises(ConfigError, match="needs head.word_values=true"):
        load_config(TrainConfig, "comma", ["loss.word_weight=1"], PRESET_DIR)
    with pytest.raises(ConfigError, match=r"selection.keep=90 > data.candidates=80"):
        load_config(TrainConfig, "paper-clip", ["selection.keep=90"], PRESET_DIR)
    with pytest.raises(ConfigError, match="not a multiple of loss.local_group=24"):
        load_config(TrainConfig, "paper-clip", ["loss.local_group=24"], PRESET_DIR)
    with pytest.raises(ConfigError, match="layers must be"):
        load_config(TrainConfig, "paper-clip", ["head.layers=[cross,mlp]"], PRESET_DIR)
    assert "optim.lr" in valid_keys(TrainConfig) and "runtime.workers" in valid_keys(TrainConfig)
