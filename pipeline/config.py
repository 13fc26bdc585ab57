"""Typed, frozen command configs: one mechanism for every command (extract, train, infer, score, demo, compare).

A command declares a frozen dataclass tree (nested dataclasses for sections). Values come, in order, from
the dataclass defaults, a YAML preset (a file in one of the command's preset directories, which may name
another preset under `inherit:`), and `key=value` overrides (`optim.lr=3e-4`, `stg.head.layers=[cross,cross]`).
Values are parsed
against the field's type (int, float, bool, str, Literal choices, X | None, tuple[...], dict, nested
dataclass); an unknown key is an error that names it and lists the valid keys of its section.

    cfg = load_config(TrainConfig, preset="reference", overrides=["optim.lr=1e-4"], preset_dir=PRESETS)
    save_yaml(cfg, "run/config.yaml"); cfg2 = load_yaml(TrainConfig, "run/config.yaml")  # cfg2 == cfg
"""
from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

C = TypeVar("C")
INHERIT = "inherit"


class ConfigError(ValueError):
    """A preset or override that does not fit the command's config (the message says which key and why)."""


# ---- bounds of numeric fields (called from the config dataclasses' __post_init__) ---------------------------
def _check(section: str, values: dict[str, Any], ok, rule: str) -> None:
    for name, value in values.items():
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
            raise ConfigError(f"{section + '.' if section else ''}{name} must be {rule}, got {value!r}")


def at_least(section: str, minimum: float, **values: Any) -> None:
    """Each value (None: unset, skipped) must be a finite number >= minimum; NaN and inf are refused."""
    _check(section, values, lambda v: v >= minimum, f">= {minimum:g}")


def above(section: str, minimum: float, **values: Any) -> None:
    """Each value (None: unset, skipped) must be a finite number > minimum; NaN and inf are refused."""
    _check(section, values, lambda v: v > minimum, f"> {minimum:g}")


def finite(section: str, **values: Any) -> None:
    _check(section, values, lambda v: True, "a finite number")


# ---- parsing one value against a type ------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """`value` (from YAML or a command line) as type `tp`; raises ConfigError naming `key`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null", "~") and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arm, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} fits none of {[_type_name(a) for a in args]}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _plain(value)
    return _scalar(value, tp, key)


def _scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)  # YAML reads "1e-4" as a string: float() accepts it
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported field type {tp!r}")


def _plain(value: Any) -> Any:
    """Mappings/sequences as plain dicts/lists (what YAML and checkpoints hold)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---- dataclass trees ------------------------------------------------------------------------------------------
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def valid_keys(cls: type, prefix: str = "") -> list[str]:
    """Every settable key of a config class, dotted (`optim.lr`)."""
    keys = []
    for name, tp in _hints(cls).items():
        keys += valid_keys(tp, f"{prefix}{name}.") if _is_section(tp) else [f"{prefix}{name}"]
    return keys


def build(cls: type[C], values: Mapping[str, Any], prefix: str = "") -> C:
    """Instantiate `cls` from a nested mapping; missing fields keep their defaults."""
    hints = _hints(cls)
    unknown = [k for k in values if k not in hints]
    if unknown:
        where = f"section '{prefix.rstrip('.')}'" if prefix else cls.__name__
        raise ConfigError(f"unknown key '{prefix}{unknown[0]}' in {where}; valid keys: "
                          f"{', '.join(prefix + k for k in hints)}")
    kwargs = {}
    for name, value in values.items():
        tp = hints[name]
        if _is_section(tp):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{prefix}{name}: a section, set its keys ({prefix}{name}.KEY=VALUE)")
            kwargs[name] = build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(value, tp, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ checks of a section
        raise ConfigError(_qualified(str(exc), prefix)) from None


def _qualified(message: str, prefix: str) -> str:
    """A section check's message with its keys named in full: a message that names keys from the section's own
    name on ("head.heads must be ...") gets the parents' prefix ("stg.head.heads ..."); any other is said to
    come from the section ("stg: ...")."""
    if not prefix or message.startswith(prefix):
        return message
    parts = prefix.rstrip(".").split(".")
    for i in range(len(parts)):
        if message.startswith(".".join(parts[i:]) + "."):
            return "".join(f"{p}." for p in parts[:i]) + message
    return f"{prefix.rstrip('.')}: {message}"


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain nested dicts/lists (for YAML, JSON and checkpoints)."""
    return {f.name: to_dict(v) if dataclasses.is_dataclass(v := getattr(cfg, f.name)) else _plain(v)
            for f in dataclasses.fields(cfg)}


def merge(base: dict, update: Mapping, cls: type | None = None) -> dict:
    """Deep merge: sections of `cls` merge key by key; values (dict-valued fields included) are replaced.
    Without `cls` every mapping merges."""
    out, hints = dict(base), (_hints(cls) if cls is not None else None)
    for k, v in update.items():
        nested, sub = (True, None) if hints is None else (_is_section(hints.get(k)), hints.get(k))
        if nested and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v, sub)
        else:
            out[k] = v
    return out


# ---- presets and overrides ------------------------------------------------------------------------------------
PresetDirs = Path | str | Sequence[Path | str]


def _dirs(preset_dirs: PresetDirs) -> list[Path]:
    return [Path(preset_dirs)] if isinstance(preset_dirs, (str, Path)) else [Path(d) for d in preset_dirs]


def preset_names(preset_dirs: PresetDirs) -> list[str]:
    return sorted(p.stem for d in _dirs(preset_dirs) for p in d.glob("*.yaml"))


def preset_path(name: str | Path, preset_dirs: PresetDirs) -> Path:
    """A preset's file: `name` itself when it is a .yaml path, else NAME.yaml in the first directory holding it."""
    if str(name).endswith((".yaml", ".yml")):
        path = Path(name)
    else:
        path = next((d / f"{name}.yaml" for d in _dirs(preset_dirs) if (d / f"{name}.yaml").is_file()),
                    Path(f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"unknown preset {str(name)!r}: choose one of {preset_names(preset_dirs)} or a .yaml file")
    return path


def read_preset(name: str | Path, preset_dirs: PresetDirs, cls: type | None = None,
                _seen: tuple[str, ...] = ()) -> dict:
    """A preset's values on top of the preset it inherits from (`inherit: NAME`)."""
    path = preset_path(name, preset_dirs)
    if str(path) in _seen:
        raise ConfigError(f"preset {path} inherits from itself ({' -> '.join(_seen)})")
    data = read_yaml_mapping(path, f"preset {path}")
    parent = data.pop(INHERIT, None)
    return merge(read_preset(parent, preset_dirs, cls, (*_seen, str(path))), data, cls) if parent else data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (['a', 'b'], value parsed as YAML; typed later against the field)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE (e.g. optim.lr=1e-4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(values: dict, overrides: Sequence[str], cls: type) -> dict:
    """Overrides on top of preset values; checks each dotted key against `cls` before setting it."""
    out = dict(values)
    for text in overrides:
        path, value = parse_override(text)
        section, hints, node = cls, _hints(cls), out
        for depth, part in enumerate(path):
            if part not in hints:
                prefix = ".".join(path[:depth])
                where = f" in {prefix}" if prefix else ""
                keys = ", ".join(valid_keys(section, f"{prefix}." if prefix else ""))
                raise ConfigError(f"unknown key '{'.'.join(path[:depth + 1])}'; valid keys{where}: {keys}")
            tp = hints[part]
            if depth == len(path) - 1:
                node[part] = value
            elif _is_section(tp):
                node[part] = dict(node.get(part) or {})
                node, section, hints = node[part], tp, _hints(tp)
            else:
                raise ConfigError(f"'{'.'.join(path[:depth + 1])}' is a value, not a section")
    return out


def load_config(cls: type[C], preset: str | Path | None = None, overrides: Sequence[str] = (),
                preset_dir: PresetDirs | None = None, base: Mapping | None = None) -> C:
    """Defaults <- `base` values (e.g. a saved config) <- preset <- overrides, typed and checked."""
    values = dict(base or {})
    if preset is not None:
        if preset_dir is None and not str(preset).endswith((".yaml", ".yml")):
            raise ConfigError(f"preset {preset!r} given without a preset directory")
        values = merge(values, read_preset(preset, preset_dir or ".", cls), cls)
    return build(cls, apply_overrides(values, overrides, cls))


def save_yaml(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_yaml_mapping(path: str | Path, name: str | None = None) -> dict:
    """A YAML file holding a mapping (empty: {}); ConfigError naming the file when it is unreadable, not YAML
    or not a mapping."""
    name = name or str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{name}: not valid YAML{where} ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping of keys, got {type(data).__name__}")
    return data


def load_yaml(cls: type[C], path: str | Path, overrides: Sequence[str] = ()) -> C:
    """A config saved by `save_yaml`, with overrides; errors name the file."""
    data = read_yaml_mapping(path)
    try:
        build(cls, data)  # the file alone first, so that its own errors name it
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return build(cls, apply_overrides(data, overrides, cls))
