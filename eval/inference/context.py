"""An inference session: the store, the method (a trained head or the frozen features), the rebuilt text
encoder, the black row for reference padding, the config and the missing-video policy."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from eval.inference.config import InferConfig
from eval.inference.encoder import EncoderOptions, TextEncoder, black_row, rebuild_encoder
from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures
from eval.inference.grounders import FrozenGrounder, Grounder, HeadGrounder, resolve_device
from eval.scorers.common import MISSING_POLICIES
from pipeline.store import FeatureStore, open_store
from pipeline.store.root import spec_differences
from trainer.checkpoint import load_trained

# Spec keys that decide the feature space a head was trained in; others (resize, S3D rate) may differ
# between the training store and the evaluation store (the released code trained on crops, evaluated squashed).
SPACE_KEYS = ("encoder", "model", "weights_sha256", "dims", "grid", "max_words", "tokenizer", "sentence_pool")
SPACE_PREPROCESSING = ("normalize", "value_range", "size")


class MissingVideosError(RuntimeError):
    """Videos (or queries) without features under `--missing fail`."""

    def __init__(self, missing: dict[str, str]):
        self.missing = missing
        lines = [f"  {item}: {reason}" for item, reason in list(missing.items())[:20]]
        more = f"\n  ... ({len(missing)} in all)" if len(missing) > 20 else ""
        super().__init__(f"{len(missing)} benchmark item(s) have no usable features:\n" + "\n".join(lines) + more
                         + "\nPass --missing miss to write the rest and score these as misses.")


@dataclass
class Session:
    store: FeatureStore
    encoder: str                    # store encoder group the method reads
    grounder: Grounder
    texts: TextEncoder
    black: dict | None              # black row features (spatial.padding=black)
    cfg: InferConfig
    missing_policy: str = "fail"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    info: dict = field(default_factory=dict)  # what made the predictions (metadata)

    def __post_init__(self) -> None:
        if self.missing_policy not in MISSING_POLICIES:
            raise InferenceError(f"unknown missing policy {self.missing_policy!r} (one of {MISSING_POLICIES})")

    def absent(self, video_ids: list[str]) -> dict[str, str]:
        """Videos with no segment of this encoder at cfg.fps, with the reason (a failure record if any)."""
        out = {}
        for vid in video_ids:
            rows = [r for r in self.store.segments(vid, self.encoder) if abs(r["fps"] - self.cfg.fps) < 1e-6]
            if not rows:
                out[vid] = self._reason(vid)
        return out

    def _reason(self, vid: str) -> str:
        failed = [f for f in self.store.failures() if f.video_id == vid]
        if failed:
            return f"extraction failed at stage {failed[-1].stage!r}: {failed[-1].reason}"
        rates = sorted({r["fps"] for r in self.store.segments(vid, self.encoder)})
        return (f"no {self.encoder} features at {self.cfg.fps:g} fps (the store has this video at {rates} fps)"
                if rates else f"no {self.encoder} features in the store")

    def check_present(self, video_ids: list[str], missing: dict[str, str]) -> list[str]:
        """The videos that have features; absent ones are recorded in `missing`, or fail the run at once."""
        absent = self.absent(video_ids)
        if absent and self.missing_policy == "fail":
            raise MissingVideosError(absent)
        missing.update(absent)
        return [v for v in video_ids if v not in absent]

    def miss(self, missing: dict[str, str], items: list[str], error: MissingFeatures) -> None:
        if self.missing_policy == "fail":
            raise MissingVideosError({item: error.reason for item in items})
        missing.update({item: error.reason for item in items})


def _space(spec: dict) -> dict:
    out = {k: spec[k] for k in SPACE_KEYS if k in spec}
    out["preprocessing"] = {k: spec.get("preprocessing", {}).get(k) for k in SPACE_PREPROCESSING}
    return out


def check_trained_space(trained_spec: dict, store_spec: dict, store_root: str) -> list[str]:
    """Refuse a store whose features live in another space than the head's training store; return the
    harmless differences (resize, rates) for the report."""
    problems = spec_differences(_space(store_spec), _space(trained_spec))
    if problems:
        raise InferenceError(f"{store_root}: its features differ from those the head was trained on:\n  "
                         + "\n  ".join(problems))
    return spec_differences(store_spec, trained_spec)


def head_session(run: str | Path, store_path: str, cfg: InferConfig, opts: EncoderOptions,
                 missing_policy: str) -> Session:
    device = resolve_device(cfg.device)
    trained = load_trained(run, device)
    store = open_store(store_path)
    name = trained.config.data.encoder
    if name not in store.encoders:
        raise InferenceError(f"{store_path}: no {name} features (the head was trained on {name}; the store has "
                         f"{sorted(store.encoders)})")
    notes = check_trained_space(trained.encoder_spec, store.encoders[name], store_path)
    encoder = rebuild_encoder(store.encoders[name], replace(opts, device=str(device)))
    grounder = HeadGrounder(trained, cfg)
    black = black_row(encoder) if cfg.spatial.padding == "black" else None
    info = {"run": str(run), "checkpoint": trained.path, "step": trained.step, "head": trained.config.head.name,
            "eval_attention": list(grounder.attention), "temporal_source": grounder.source,
            "store_differences_from_training": notes}
    return Session(store, name, grounder, TextEncoder(encoder), black, cfg, missing_policy, device, info)


def frozen_session(store_path: str, encoder_name: str, cfg: InferConfig, opts: EncoderOptions,
                   missing_policy: str) -> Session:
    device = resolve_device(cfg.device)
    store = open_store(store_path)
    if encoder_name not in store.encoders:
        raise InferenceError(f"{store_path}: no {encoder_name} features (it has {sorted(store.encoders)})")
    encoder = rebuild_encoder(store.encoders[encoder_name], replace(opts, device=str(device)))
    grounder = FrozenGrounder(encoder, cfg)
    black = black_row(encoder) if cfg.spatial.padding == "black" else None
    info = {"encoder_model": store.encoders[encoder_name]["model"]}
    return Session(store, encoder_name, grounder, TextEncoder(encoder), black, cfg, missing_policy, device, info)
