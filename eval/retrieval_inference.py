"""COOT inference: clip/sentence and video/paragraph embeddings of a store's timed queries from a trained `coot`
run, written as `/retrieval/clip` and `/retrieval/video` similarity matrices (task "retrieval").

    from eval.retrieval_inference import infer_retrieval
    summary = infer_retrieval("runs/coot", "store.zarr", "retrieval.h5", kinds=("step",))
    # then: python -m eval.score retrieval --predictions retrieval.h5 --benchmark-dir DIR --benchmark gyt

Per video: its queries (captions of `kinds` with times, eval.store_queries) in time order are the clips and the
paragraph; clip i = up to data.candidates stored frames of the caption's span (centres of equal intervals; the
annotated segment, as COOT's clip-sentence retrieval uses), the whole video = data.video_frames frames
(centres of equal intervals), as in training. Similarity = cosine of the embeddings (COOT appendix A.1).
Ids: "<video_id>/<query_id>" for clips and sentences, the video id for videos and paragraphs. Queries whose
span holds no stored frame are left out and listed in the summary (the scorer then reports them missing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from eval.predictions import PredictionsMeta, PredictionsWriter
from eval.store_queries import RankedInferenceError, VideoQueries, open_run, video_frames, video_queries
from trainer.video_data import span_rows, uniform_centres


@dataclass
class VideoItem:
    video_id: str
    query_ids: list[str]
    clip_frames: list[np.ndarray]      # per clip [F_i, Dg]
    words: np.ndarray                  # [C, W, Dw]
    word_mask: np.ndarray              # [C, W]
    frames: np.ndarray                 # [V, Dg] whole-video frames


def video_item(store, queries: VideoQueries, encoder: str, cfg,
               store_fps: float | None = None) -> tuple[VideoItem | None, list[str]]:
    """The video's clips (queries with frames and words) and the ids of the queries left out."""
    times, feats = video_frames(store, queries.video_id, encoder, store_fps)
    if not len(times):
        return None, [f"{queries.video_id}/{q}" for q in queries.query_ids]
    stored = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    keep, clips, skipped = [], [], []
    for k, qid in enumerate(queries.query_ids):
        rows = span_rows(times, queries.start[k], queries.end[k], stored, cfg.data.candidates)
        if len(rows) and queries.mask[k].any():
            keep.append(k)
            clips.append(feats[rows])
        else:
            skipped.append(f"{queries.video_id}/{qid}")
    if not keep:
        return None, skipped
    whole = feats[uniform_centres(len(times), cfg.data.video_frames)]
    return VideoItem(queries.video_id, [queries.query_ids[k] for k in keep], clips, queries.words[keep],
                     queries.mask[keep], whole), skipped


def _pad(items: list[VideoItem], device) -> dict[str, torch.Tensor]:
    """A padded batch of video items (head inputs)."""
    b, c = len(items), max(len(it.clip_frames) for it in items)
    f = max(len(x) for it in items for x in it.clip_frames)
    v = max(len(it.frames) for it in items)
    dg, (w, dw) = items[0].frames.shape[-1], items[0].words.shape[1:]
    out = {"clip_frames": np.zeros((b, c, f, dg), np.float32), "clip_frame_mask": np.zeros((b, c, f), bool),
           "clip_mask": np.zeros((b, c), bool), "words": np.zeros((b, c, w, dw), np.float32),
           "word_mask": np.zeros((b, c, w), bool), "video_frames": np.zeros((b, v, dg), np.float32),
           "video_mask": np.zeros((b, v), bool)}
    for i, it in enumerate(items):
        n = len(it.clip_frames)
        for k, x in enumerate(it.clip_frames):
            out["clip_frames"][i, k, :len(x)], out["clip_frame_mask"][i, k, :len(x)] = x, True
        out["clip_mask"][i, :n] = True
        out["words"][i, :n], out["word_mask"][i, :n] = it.words, it.word_mask
        out["video_frames"][i, :len(it.frames)], out["video_mask"][i, :len(it.frames)] = it.frames, True
    return {k: torch.from_numpy(a).to(device) for k, a in out.items()}


@torch.no_grad()
def embed(head, items: list[VideoItem], batch_videos: int, device) -> dict[str, torch.Tensor]:
    """L2-normalised clip, sentence [N_clips, d] and video, paragraph [N_videos, 2d] embeddings, item order."""
    parts: dict[str, list[torch.Tensor]] = {"clip": [], "sentence": [], "video": [], "paragraph": []}
    for first in range(0, len(items), batch_videos):
        batch = _pad(items[first:first + batch_videos], device)
        video = head.encode_video(batch["clip_frames"], batch["clip_frame_mask"], batch["clip_mask"],
                                  batch["video_frames"], batch["video_mask"])
        text = head.encode_text(batch["words"], batch["word_mask"], batch["clip_mask"])
        parts["clip"].append(video.items[batch["clip_mask"]])
        parts["sentence"].append(text.items[batch["clip_mask"]])
        parts["video"].append(video.whole)
        parts["paragraph"].append(text.whole)
    return {k: F.normalize(torch.cat(v).float(), dim=-1).cpu() for k, v in parts.items()}


def infer_retrieval(run: str, store: str, out: str, queries: dict[str, VideoQueries] | None = None,
                    kinds: tuple[str, ...] = ("step",), videos: list[str] | None = None,
                    store_fps: float | None = None, batch_videos: int = 16, device: str = "cpu") -> dict:
    """Write the retrieval predictions of a coot run: `queries` (video -> timed VideoQueries with text features)
    or, when None, the store's timed captions of `kinds`; frames of the segments extracted at `store_fps`
    (None: all). Returns a summary."""
    trained, feature_store = open_run(run, store, "coot", device)
    cfg, encoder = trained.config, trained.config.data.encoder
    items, skipped = [], []
    for vid in videos or (sorted(queries) if queries is not None else feature_store.video_ids()):
        q = queries.get(vid) if queries is not None else video_queries(feature_store, vid, encoder, kinds)
        if q is None:
            continue
        item, left = video_item(feature_store, q, encoder, cfg, store_fps)
        skipped += left
        if item is not None:
            items.append(item)
    if not items:
        raise RankedInferenceError(f"{store}: no video has timed captions of kinds {list(kinds)} with frames")
    emb = embed(trained.head, items, batch_videos, device)
    clip_ids = [f"{it.video_id}/{q}" for it in items for q in it.query_ids]
    video_ids = [it.video_id for it in items]
    meta = PredictionsMeta("retrieval", "coot", "paper", {"run": str(run), "checkpoint": trained.path,
                                                          "step": trained.step, "store": str(store),
                                                          "kinds": list(kinds)})
    with PredictionsWriter(out, meta) as writer:
        writer.add_retrieval("clip", clip_ids, clip_ids, (emb["sentence"] @ emb["clip"].T).numpy())
        writer.add_retrieval("video", video_ids, video_ids, (emb["paragraph"] @ emb["video"].T).numpy())
    return {"videos": len(items), "clips": len(clip_ids), "skipped": skipped, "out": str(out)}
