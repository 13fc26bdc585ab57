"""The generic config mechanism: presets (searched over several folders), inheritance, typed overrides, unknown keys."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from pipeline.config import ConfigError, load_config, preset_names


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


def test_presets_are_searched_in_every_directory_in_order(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "a.yaml").write_text("count: 1\n")
    (second / "a.yaml").write_text("count: 2\n")
    (second / "b.yaml").write_text("inherit: a\nflag: true\n")
    assert load_config(Command, "a", [], [first, second]).count == 1
    assert load_config(Command, "b", [], [first, second]) == Command(count=1, flag=True)
    assert preset_names([first, second]) == ["a", "a", "b"]
