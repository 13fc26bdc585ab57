"""The methods: one folder each under trainer/methods/, and the `METHODS` registry that maps a name to its parts.

A method folder holds everything the method is (its config section, presets, head, losses, training step,
dataset, inference adapter and the evaluation tasks it answers) and exports `METHODS`, a tuple of `Method`s
(`stg/` exports both stg and comma: they share the local stack). Folders are found by listing this package,
so adding a method is adding a folder (trainer/README.md shows one). Shared machinery sits in trainer/ beside
this package: narration sampling (data, narrations, video_frames), attention blocks (attention), contrastive
losses (losses), distributed helpers (distributed), the training loop (train) and checkpoints (checkpoint).

    cfg = load_train_config("paper-clip", ["stg.selection.keep=8"])   # TrainConfig with its `stg` section
    head = build_head(cfg, dims)                                      # the method's head, tiny variant applied
    METHODS[cfg.method].step(head, cfg, world)                        # the module computing the loss terms
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path

from torch import nn

from pipeline.config import ConfigError, load_config, parse_override, preset_names, read_preset, read_yaml_mapping
from trainer.methods.method import Method
from trainer.train_config import TrainConfig

DIM_KEYS = ("global", "grid", "sentence", "words")


def _discover() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{info.name}")
        for method in package.METHODS:
            if method.name in found:
                raise ValueError(f"method {method.name!r} is registered twice")
            found[method.name] = method
    return dict(sorted(found.items()))


METHODS: Mapping[str, Method] = _discover()


def _check_presets_are_unique() -> None:
    """A preset name means one file: two method folders may not both define it."""
    seen: dict[str, Path] = {}
    for folder in dict.fromkeys(m.presets for m in METHODS.values()):
        for path in sorted(folder.glob("*.yaml")):
            if path.stem in seen:
                raise ValueError(f"preset {path.stem!r} is defined twice: {seen[path.stem]} and {path}")
            seen[path.stem] = path


_check_presets_are_unique()


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; registered methods: {sorted(METHODS)}")
    return METHODS[name]


def preset_dirs() -> list[Path]:
    return list(dict.fromkeys(m.presets for m in METHODS.values()))


def all_presets() -> list[str]:
    return preset_names(preset_dirs())


@functools.cache
def config_class(method: str) -> type[TrainConfig]:
    """TrainConfig with exactly the method's section, a field named after the method."""
    section = get_method(method).section
    return dataclasses.make_dataclass(f"TrainConfig_{method}", [(method, section, field(default_factory=section))],
                                      bases=(TrainConfig,), frozen=True)


def _method_of(preset: str | Path | None, overrides: Sequence[str], base: Mapping | None) -> str:
    method = (base or {}).get("method", TrainConfig.method)
    if preset is not None:
        method = read_preset(preset, preset_dirs()).get("method", method)
    for text in overrides:
        key, value = parse_override(text)
        if key == ["method"]:
            method = value
    return str(method)


def load_train_config(preset: str | Path | None = None, overrides: Sequence[str] = (),
                      base: Mapping | None = None) -> TrainConfig:
    """Defaults <- `base` <- preset <- `key=value` overrides, typed by the method the result names."""
    cls = config_class(_method_of(preset, overrides, base))
    return load_config(cls, preset, overrides, preset_dirs(), base)


def config_from_dict(values: Mapping, overrides: Sequence[str] = (), where: str = "") -> TrainConfig:
    """A saved config (config.yaml, a checkpoint) as a TrainConfig; a config of groundcache 0.1 (before
    methods had sections) is converted first."""
    values = from_legacy(values)
    try:
        return load_train_config(overrides=overrides, base=values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def load_train_yaml(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """A run's config.yaml; its own errors name the file."""
    values = read_yaml_mapping(path)
    config_from_dict(values, where=str(path))
    return config_from_dict(values, overrides, str(path))


def build_head(cfg: TrainConfig, dims: dict[str, int]) -> nn.Module:
    """The method's head for these feature widths (the tiny variant's sizes applied)."""
    method = get_method(cfg.method)
    head_cfg = cfg.section.head
    if head_cfg.variant == "tiny":
        head_cfg = dataclasses.replace(head_cfg, **method.tiny)
    missing = [k for k in DIM_KEYS if k not in dims]
    if missing:
        raise ValueError(f"feature widths {missing} missing from {dims}")
    return method.build_head({k: int(dims[k]) for k in DIM_KEYS}, head_cfg)


def from_legacy(values: Mapping) -> dict:
    """A groundcache 0.1 train config (head.name picked the method; coot/wsra fields nested in head, loss,
    data) in this layout; other configs pass unchanged."""
    values = dict(values)
    if "method" in values or "head" not in values:
        return values
    head, loss, sel, data = (dict(values.pop(k, {}) or {}) for k in ("head", "loss", "selection", "data"))
    name = head.pop("name", "stg")
    coot_head, wsra_head = head.pop("coot", {}), head.pop("wsra", {})
    coot_loss, wsra_loss = loss.pop("coot", {}), loss.pop("wsra", {})
    moved = {k: data.pop(k) for k in ("clip", "max_clips", "video_frames", "snippet_s") if k in data}
    if name == "coot":
        section = {"head": {**{k: head[k] for k in ("variant", "dim", "heads") if k in head}, **coot_head},
                   "loss": coot_loss, "data": {k: moved[k] for k in ("clip", "max_clips", "video_frames")
                                               if k in moved}}
    elif name == "wsra":
        section = {"head": {**{k: head[k] for k in ("variant", "dim", "global_text") if k in head}, **wsra_head},
                   "loss": wsra_loss, "data": {k: moved[k] for k in ("video_frames", "snippet_s") if k in moved}}
    else:
        section = {"head": head, "selection": sel, "loss": loss}
    return {**values, "method": name, "data": data, name: section}


__all__ = ["METHODS", "Method", "build_head", "config_class", "config_from_dict", "get_method",
           "load_train_config", "load_train_yaml", "preset_dirs", "all_presets"]
