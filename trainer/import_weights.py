"""`python -m trainer.import_weights`: the authors' released checkpoints as a run directory of our heads, so that
`python -m eval.infer ... --run RUN_DIR` scores the authors' model on our cached features.

    python -m trainer.import_weights --from stg-release GroundingWeights.pth.tar --store STORE --out RUN_DIR
    python -m trainer.import_weights --from comma-release CKPT --store STORE --out RUN_DIR [--preset NAME]
        [key=value ...]

stg-release: brian7685/GroundingYouTube's `GroundingWeights.pth.tar` (model `s3dg_clip.py` S3D_clip, saved by
its `main_distributed.py`), into an `stg` head configured by the `reference` preset. comma-release: a checkpoint
of rxtan2/video-grounding-narrations (`s3dg.py` S3D), into a `comma` head (`comma` preset). Both save
{"epoch", "state_dict", "optimizer", "scheduler"} with the DataParallel/DDP `module.` prefix; a bare state_dict
is read too. The store gives the encoder spec and feature widths the head is built for (as in training, the
preset's `data.expect` must match it); `key=value` overrides the preset.

Every key of the state_dict either maps onto one head parameter (`HEAD_KEYS`), or belongs to a frozen backbone
(`BACKBONE`: our store holds its outputs) and is skipped, or is an error; a head parameter without a source, two
sources for one parameter, or a shape that differs is an error too. The run directory is what trainer.train
writes (config.yaml, run.json, checkpoints/step-00000000.pt) plus `imported.json` (source, sha256, the key
mapping, the skipped keys). Exit 0 done, 2 bad input (one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.config import ConfigError, to_dict
from pipeline.encoders.weights import sha256_file
from pipeline.store import SpecMismatchError, StoreError, open_store
from trainer.checkpoint import CheckpointError, checkpoint_path, save_checkpoint, step_checkpoints
from trainer.methods import all_presets, build_head, load_train_config
from trainer.rundir import RunDir

PREFIX = "module."    # DataParallel / DistributedDataParallel wrap the model as `module`
MAX_LISTED = 40       # keys named in one error line


class ImportWeightsError(ValueError):
    """A checkpoint that cannot become this head (the message names the file and the keys)."""


def _mha(theirs: str, ours: str) -> tuple[tuple[str, str], ...]:
    """nn.MultiheadAttention(512, 1) of SAEncoder -> our SelfLayer's nn.MultiheadAttention: the same packed
    q/k/v in_proj (rows q, k, v) and out_proj, parameter for parameter (batch_first changes no parameter)."""
    return tuple((f"sa_layer.{theirs}.{p}", f"stack.selfs.0.{ours}.{p}")
                 for p in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"))


def _linear(theirs: str, ours: str) -> tuple[tuple[str, str], ...]:
    """nn.Sequential(nn.Linear(in, 512)) -> our nn.Linear."""
    return tuple((f"{theirs}.0.{p}", f"{ours}.{p}") for p in ("weight", "bias"))


# The local branch, identical in GYT s3dg_clip.py and CoMMA s3dg.py: projections of grid and word tokens and the
# one self-attention layer between the two parameter-free cross-attention layers (ca_layer1/2).
LOCAL_KEYS = (*_linear("vis_proj_mat", "vis_proj"), *_linear("lang_proj_mat", "lang_proj"),
              *_mha("vis_attn_mat", "video"), *_mha("text_attn_mat", "text"))
GLOBAL_KEYS = (*_linear("vis_proj_mat_g", "vis_proj_g"), *_linear("lang_proj_mat_g", "lang_proj_g"))

# The S3D-G backbone of CoMMA's S3D (s3dg.py:362-391) and its word2vec + fc1 text module: frozen in training,
# represented in our store by the mixed_5c grid and the fc1 word tokens.
S3D_BACKBONE = ("conv1.", "conv_2b.", "conv_2c.", "gating.", "mixed_3b.", "mixed_3c.", "mixed_4b.", "mixed_4c.",
                "mixed_4d.", "mixed_4e.", "mixed_4f.", "mixed_5b.", "mixed_5c.", "text_module.")
# GYT's S3D_clip holds no backbone (CLIP runs outside the model); a file that bundles CLIP ViT-B/32 (its keys
# as in finetuned_CLIP_howto.pth.tar) or the S3D text module that the eval scripts rename
# (text_word_embd. / text_fc1. -> text_module.) is skipped the same way.
CLIP_BACKBONE = ("visual.", "transformer.", "token_embedding.", "positional_embedding", "ln_final.",
                 "text_projection", "logit_scale", "text_module.", "text_word_embd.", "text_fc1.")


@dataclass(frozen=True)
class Source:
    method: str                              # the method whose head receives the weights
    preset: str                              # its default preset
    head_keys: tuple[tuple[str, str], ...]   # (their key, our key)
    backbone: tuple[str, ...]                # name prefixes skipped as frozen backbone
    aliases: tuple[tuple[str, str], ...] = ()  # older prefixes the authors' own loader renames


SOURCES = {
    # GYT eval_*_finetune.py renames `key_mat.` -> `vis_proj_mat.` and `lang_key_mat.` -> `lang_proj_mat.`
    # before loading GroundingWeights.pth.tar: older names of the same projections.
    "stg-release": Source("stg", "reference", LOCAL_KEYS + GLOBAL_KEYS, CLIP_BACKBONE,
                          (("lang_key_mat.", "lang_proj_mat."), ("key_mat.", "vis_proj_mat."))),
    "comma-release": Source("comma", "comma", LOCAL_KEYS, S3D_BACKBONE),
}


def _listed(keys) -> str:
    keys = list(keys)
    more = f" ... ({len(keys)} in all)" if len(keys) > MAX_LISTED else ""
    return ", ".join(keys[:MAX_LISTED]) + more


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The checkpoint's state_dict with the `module.` prefix removed, and what else it says (epoch)."""
    if not path.is_file():
        raise ImportWeightsError(f"{path}: no such checkpoint file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ImportWeightsError(f"{path}: cannot be read as a checkpoint with weights_only=True ({reason})") from None
    if isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict):
        state, meta = saved["state_dict"], {k: saved[k] for k in ("epoch",) if k in saved}
    elif isinstance(saved, dict) and saved and all(isinstance(v, torch.Tensor) for v in saved.values()):
        state, meta = saved, {}
    else:
        what = f"keys {sorted(map(str, saved))[:10]}" if isinstance(saved, dict) else type(saved).__name__
        raise ImportWeightsError(f"{path}: neither a {{'state_dict': ...}} checkpoint nor a state_dict ({what})")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ImportWeightsError(f"{path}: state_dict entries that are not named tensors: {_listed(bad)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key[len(PREFIX):] if key.startswith(PREFIX) else key
        if name in out:
            raise ImportWeightsError(f"{path}: {name!r} appears both with and without the {PREFIX!r} prefix")
        out[name] = value
    return out, meta


@dataclass
class Mapping:
    head: dict[str, str]                  # our key -> their key (as in the file, prefix removed)
    skipped: dict[str, list[str]]         # backbone prefix -> their keys


def map_keys(state: dict[str, torch.Tensor], source: Source, path: Path) -> Mapping:
    """Each key onto a head parameter or a backbone prefix; anything else is an error listing the keys."""
    ours_of = dict(source.head_keys)
    head: dict[str, str] = {}
    skipped: dict[str, list[str]] = {}
    unmapped, twice = [], []
    for key in state:
        canonical = key
        for old, new in source.aliases:
            if key.startswith(old):
                canonical = new + key[len(old):]
                break
        if canonical in ours_of:
            ours = ours_of[canonical]
            if ours in head:
                twice.append(f"{head[ours]} and {key} -> {ours}")
            head[ours] = key
            continue
        prefix = next((p for p in source.backbone if key.startswith(p)), None)
        if prefix is None:
            unmapped.append(key)
        else:
            skipped.setdefault(prefix, []).append(key)
    if unmapped:
        raise ImportWeightsError(f"{path}: {len(unmapped)} key(s) that map onto no {source.method} head parameter "
                                 f"and are no known backbone: {_listed(unmapped)}")
    if twice:
        raise ImportWeightsError(f"{path}: two keys for one head parameter: {_listed(twice)}")
    return Mapping(head, skipped)


def check_architecture(cfg, source: Source, name: str) -> None:
    """The config must build the released architecture (CA-SA-CA, one head, no value MLP)."""
    if cfg.method != source.method:
        raise ConfigError(f"--from {name} fills a {source.method!r} head; the preset gives method {cfg.method!r}")
    head = cfg.section.head
    problems = []
    if tuple(head.layers) != ("cross", "self", "cross"):
        problems.append(f"{cfg.method}.head.layers={list(head.layers)} (released: [cross, self, cross])")
    if head.heads != 1:
        problems.append(f"{cfg.method}.head.heads={head.heads} (released: nn.MultiheadAttention(512, 1))")
    if head.word_values:
        problems.append(f"{cfg.method}.head.word_values=true (the released model has no value MLP)")
    if problems:
        raise ConfigError(f"--from {name}: the config does not build the released architecture: "
                          + "; ".join(problems))


def fill_head(head: torch.nn.Module, state: dict[str, torch.Tensor], mapping: Mapping, source: Source,
              path: Path) -> dict:
    """The head's state_dict with every tensor taken from its source key."""
    target = head.state_dict()
    theirs_of = {ours: theirs for theirs, ours in source.head_keys}
    missing = [f"{theirs_of.get(k, '?')} (for {k})" for k in target if k not in mapping.head]
    if missing:
        raise ImportWeightsError(f"{path}: {len(missing)} head parameter(s) have no key in the checkpoint: "
                                 f"{_listed(missing)}")
    shapes = [f"{mapping.head[k]}: checkpoint {list(state[mapping.head[k]].shape)} vs head {k} {list(v.shape)}"
              for k, v in target.items() if state[mapping.head[k]].shape != v.shape]
    if shapes:
        raise ImportWeightsError(f"{path}: shape mismatch (the head is built for the store's feature widths): "
                                 + "; ".join(shapes))
    kinds = [mapping.head[k] for k in target if not state[mapping.head[k]].is_floating_point()]
    if kinds:
        raise ImportWeightsError(f"{path}: non-floating tensors for head parameters: {_listed(kinds)}")
    return {k: state[mapping.head[k]].detach().clone().to(v.dtype) for k, v in target.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trainer.import_weights", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", required=True, choices=sorted(SOURCES), help="whose checkpoint")
    p.add_argument("checkpoint", type=Path, help="the released checkpoint file (.pth.tar)")
    p.add_argument("--store", required=True, help="feature store the head will be evaluated on (its encoder spec "
                   "and feature widths)")
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument("--preset", help=f"one of {all_presets()} or a .yaml file (default: reference for stg-release, "
                   "comma for comma-release)")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    return p.parse_intermixed_args(argv)  # CKPT right after --from, overrides after the options


def import_weights(argv: list[str] | None = None) -> dict:
    """Run the command (raises on bad input; `main` turns that into exit code 2); returns the summary."""
    args = parse_args(argv)
    source = SOURCES[args.source]
    if step_checkpoints(args.out):
        raise ConfigError(f"{args.out} already holds a run with checkpoints: pass another --out")
    preset = args.preset or source.preset
    cfg = load_train_config(preset, args.overrides)
    check_architecture(cfg, source, args.source)
    state, meta = read_state_dict(args.checkpoint)
    mapping = map_keys(state, source, args.checkpoint)

    expect = {cfg.data.encoder: cfg.data.expect} if cfg.data.expect else None
    try:
        store = open_store(args.store, expect=expect)
    except SpecMismatchError as exc:  # its message lists the differences on separate lines
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise SpecMismatchError(f"the store does not fit preset {preset!r} (data.expect): {lines[0]} "
                                + "; ".join(lines[1:])) from None
    if cfg.data.encoder not in store.encoders:
        raise StoreError(f"{args.store}: no {cfg.data.encoder!r} features (store has {sorted(store.encoders)})")
    spec = store.encoders[cfg.data.encoder]
    dims = {k: int(v) for k, v in spec["dims"].items()}
    head = build_head(cfg, dims)
    model = fill_head(head, state, mapping, source, args.checkpoint)
    head.load_state_dict(model)  # strict: the same keys and shapes, checked above

    provenance = {"from": args.source, "source": str(args.checkpoint.resolve()),
                  "sha256": sha256_file(args.checkpoint), "source_epoch": meta.get("epoch"),
                  "mapping": {mapping.head[k]: k for k in model},
                  "skipped": {p: keys for p, keys in sorted(mapping.skipped.items())},
                  "eval_loading_bug": "the released eval scripts rename sa_layer.vis_attn_mat.* away and leave the "
                                      "video self-attention random; this import loads it"}
    run = RunDir(args.out)
    run.start(cfg, {"store": str(args.store), "preset": preset, "overrides": args.overrides,
                    "encoder_spec": spec, "imported": {k: provenance[k] for k in ("from", "source", "sha256")}})
    (args.out / "imported.json").write_text(json.dumps(provenance, indent=2))
    path = checkpoint_path(args.out, 0)
    save_checkpoint(path, {"step": 0, "epoch": 0, "batch": 0, "model": head.state_dict(), "config": to_dict(cfg),
                           "encoder_spec": spec, "dims": dims, "world_size": 1,
                           "imported": {k: provenance[k] for k in ("from", "source", "sha256")}})
    return {"run_dir": str(args.out), "checkpoint": str(path), "from": args.source, "method": cfg.method,
            "preset": preset, "source": provenance["source"], "sha256": provenance["sha256"],
            "mapped": len(model), "skipped": {p: len(k) for p, k in provenance["skipped"].items()}}


def main(argv: list[str] | None = None) -> int:
    try:
        summary = import_weights(argv)
    except (ImportWeightsError, ConfigError, StoreError, CheckpointError) as exc:
        print(f"trainer.import_weights: error: {exc}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{p} ({n})" for p, n in summary["skipped"].items()) or "none"
    print(f"imported {summary['mapped']} head tensors of {summary['source']} ({summary['from']}) into "
          f"{summary['checkpoint']} ({summary['method']}, preset {summary['preset']})")
    print(f"skipped as frozen backbone, by name prefix: {skipped}")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
