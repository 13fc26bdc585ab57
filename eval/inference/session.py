"""An inference session: the store, the method's adapter (a trained head of any registered method, or the frozen
features), the query texts' features, the black row for reference padding, the config and the missing-video
policy. Every task of `python -m eval.infer` runs on one (eval.inference.tasks)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from eval.feature_checks import check_captions
from eval.inference.config import InferConfig
from eval.inference.encoder import EncoderOptions, TextEncoder, TextFeatures, black_row, rebuild_encoder
from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures
from eval.inference.grounders import FrozenGrounder
from eval.scorers.common import MISSING_POLICIES
from eval.tasks import GROUNDING_TASKS
from pipeline.store import FeatureStore, NotInStoreError, open_store
from pipeline.store.root import spec_differences
from trainer.checkpoint import load_trained
from trainer.methods import get_method

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


def resolve_device(name: str) -> torch.device:
    """The one device rule of inference: `auto` is cuda when present, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class StoreTexts:
    """text.source=store: a text's features are those extraction stored for a caption with exactly that text,
    found among the captions of the videos the run asks about (each video's captions read once); a timed query
    takes its own caption's (the manifest builders end a caption id with the annotation's query id)."""

    def __init__(self, store: FeatureStore, encoder: str):
        self.store, self.encoder = store, encoder
        self._found: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._by_id: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._read: set[str] = set()

    def _scan(self, video_id: str) -> None:
        self._read.add(video_id)
        try:
            caps = self.store.captions(video_id, self.encoder)
        except NotInStoreError:
            return
        check_captions(self.store.root, video_id, self.encoder, caps["caption_id"], caps["start"],
                       {k: caps[k] for k in ("sentence", "words")})
        for i, text in enumerate(caps["text"]):
            row = (caps["sentence"][i].astype(np.float32), caps["words"][i].astype(np.float32), caps["mask"][i])
            self._found.setdefault(str(text), row)
            self._by_id[str(caps["caption_id"][i]).rsplit(":", 1)[-1] + "\n" + str(text), video_id] = row

    def __call__(self, texts: list[str] | tuple[str, ...], videos: list[str] = (),
                 query_ids: list[str] | None = None) -> TextFeatures:
        """Features of `texts`, looked up among `videos`' captions; with `query_ids` (one video's timed queries),
        each query's own caption when the store holds it."""
        for vid in videos:
            if any(t not in self._found for t in texts) and vid not in self._read:
                self._scan(vid)
        absent = [t for t in dict.fromkeys(texts) if t not in self._found]
        if absent:
            raise InferenceError(f"{self.store.root}: no stored {self.encoder} caption of the benchmark's videos has "
                                 f"the text {absent[0]!r} ({len(absent)} such text(s)); use text.source=encoder")
        rows = [self._found[t] for t in texts]
        if query_ids is not None:
            rows = [self._by_id.get((f"{q}\n{t}", videos[0]), row) for q, t, row in zip(query_ids, texts, rows)]
        return TextFeatures(tuple(texts), *(np.stack([r[k] for r in rows]) for k in range(3)))


class EncodedTexts:
    """text.source=encoder: the store's text encoder rebuilt and run on the texts (each encoded once)."""

    def __init__(self, encoder):
        self.encode = TextEncoder(encoder)

    def __call__(self, texts: list[str] | tuple[str, ...], videos: list[str] = (),
                 query_ids: list[str] | None = None) -> TextFeatures:
        return self.encode(texts)


@dataclass
class Session:
    store: FeatureStore
    encoder: str                    # store encoder group the method reads
    model: object                   # the adapter: `kind` grounding | retrieval | snippets (eval/inference/__init__)
    texts: StoreTexts | EncodedTexts
    black: dict | None              # black row features (spatial.padding=black)
    cfg: InferConfig
    tasks: tuple[str, ...]          # the tasks the method answers
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
    """The one spec check: refuse a store whose features live in another space than the head's training
    store; return the harmless differences (resize, rates) for the report."""
    problems = spec_differences(_space(store_spec), _space(trained_spec))
    if problems:
        raise InferenceError(f"{store_root}: its features differ from those the head was trained on:\n  "
                             + "\n  ".join(problems))
    return spec_differences(store_spec, trained_spec)


def _texts_and_black(store: FeatureStore, name: str, cfg: InferConfig, opts: EncoderOptions, device: torch.device):
    """The texts' features and the black row; the encoder is rebuilt only when one of them needs it."""
    need_encoder = cfg.text.source == "encoder" or cfg.spatial.padding == "black"
    encoder = rebuild_encoder(store.encoders[name], replace(opts, device=str(device))) if need_encoder else None
    texts = EncodedTexts(encoder) if cfg.text.source == "encoder" else StoreTexts(store, name)
    return texts, black_row(encoder) if cfg.spatial.padding == "black" else None


def method_session(run: str | Path, store_path: str, cfg: InferConfig, opts: EncoderOptions,
                   missing_policy: str) -> Session:
    """A trained run of any registered method (its newest checkpoint, or a checkpoint file) on a store."""
    device = resolve_device(cfg.device)
    trained = load_trained(run, device)
    method = get_method(trained.config.method)
    store = open_store(store_path)
    name = trained.config.data.encoder
    if name not in store.encoders:
        raise InferenceError(f"{store_path}: no {name} features (the head was trained on {name}; the store has "
                             f"{sorted(store.encoders)})")
    notes = check_trained_space(trained.encoder_spec, store.encoders[name], store_path)
    try:
        model = method.inference(trained, device, attention=cfg.spatial.attention, source=cfg.temporal.source,
                                 batch_videos=cfg.batch_videos)
    except ValueError as exc:  # a setting the method cannot honour (the message says which)
        raise InferenceError(f"{run}: {exc}") from None
    texts, black = _texts_and_black(store, name, cfg, opts, device)
    info = {"run": str(run), "checkpoint": trained.path, "step": trained.step, "method": method.name,
            **model.info, "store_differences_from_training": notes}
    return Session(store, name, model, texts, black, cfg, method.tasks, missing_policy, device, info)


def frozen_session(store_path: str, encoder_name: str, cfg: InferConfig, opts: EncoderOptions,
                   missing_policy: str) -> Session:
    """The frozen features alone (the global-sim baseline) on the grounding tasks."""
    device = resolve_device(cfg.device)
    store = open_store(store_path)
    if encoder_name not in store.encoders:
        raise InferenceError(f"{store_path}: no {encoder_name} features (it has {sorted(store.encoders)})")
    encoder = rebuild_encoder(store.encoders[encoder_name], replace(opts, device=str(device)))
    model = FrozenGrounder(encoder, device)
    texts = EncodedTexts(encoder) if cfg.text.source == "encoder" else StoreTexts(store, encoder_name)
    black = black_row(encoder) if cfg.spatial.padding == "black" else None
    info = {"encoder_model": store.encoders[encoder_name]["model"]}
    return Session(store, encoder_name, model, texts, black, cfg, GROUNDING_TASKS, missing_policy, device, info)
