"""What evaluation asks of `coot` (the retrieval task): L2-normalised embeddings of a video's clips and whole
video, and of its sentences and paragraph. Clip i = up to data.candidates stored frames of query i's span
(centres of equal intervals: the annotated segment, as COOT's clip-sentence retrieval uses), the whole video =
coot.data.video_frames frames (centres of equal intervals), as in training; similarity = cosine (COOT appendix
A.1). `queries` needs `video_id`, `query_ids`, `start`, `end`, `words`, `mask`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from trainer.methods.coot.dataset import span_rows, uniform_centres


@dataclass
class VideoItem:
    video_id: str
    query_ids: list[str]
    clip_frames: list[np.ndarray]      # per clip [F_i, Dg]
    words: np.ndarray                  # [C, W, Dw]
    word_mask: np.ndarray              # [C, W]
    frames: np.ndarray                 # [V, Dg] whole-video frames


class CootRetriever:
    kind = "retrieval"

    def __init__(self, trained, device: torch.device, batch_videos: int = 16, attention: str = "checkpoint",
                 source: str = "auto", **_):
        if attention != "checkpoint" or source != "auto":  # settings of heatmaps and of similarities it has not
            raise ValueError("coot has no attention rollout and no global/local similarity: leave "
                             "spatial.attention and temporal.source at their defaults")
        self.head, self.device = trained.head.to(device).eval(), device
        self.cfg, self.batch_videos = trained.config, batch_videos
        self.method = f"coot@step{trained.step}"
        self.info: dict = {}

    def item(self, times: np.ndarray, feats: np.ndarray, queries) -> tuple[VideoItem | None, list[str]]:
        """The video's clips (queries with frames and words) and the ids of the queries left out."""
        if not len(times):
            return None, [f"{queries.video_id}/{q}" for q in queries.query_ids]
        stored = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0
        keep, clips, skipped = [], [], []
        for k, qid in enumerate(queries.query_ids):
            rows = span_rows(times, queries.start[k], queries.end[k], stored, self.cfg.data.candidates)
            if len(rows) and queries.mask[k].any():
                keep.append(k)
                clips.append(feats[rows])
            else:
                skipped.append(f"{queries.video_id}/{qid}")
        if not keep:
            return None, skipped
        whole = feats[uniform_centres(len(times), self.cfg.coot.data.video_frames)]
        return VideoItem(queries.video_id, [queries.query_ids[k] for k in keep], clips, queries.words[keep],
                         queries.mask[keep], whole), skipped

    @torch.no_grad()
    def embed(self, items: list[VideoItem]) -> dict[str, torch.Tensor]:
        """Clip, sentence [N_clips, d] and video, paragraph [N_videos, 2d] embeddings, L2-normalised, item order."""
        parts: dict[str, list[torch.Tensor]] = {"clip": [], "sentence": [], "video": [], "paragraph": []}
        for first in range(0, len(items), self.batch_videos):
            batch = pad(items[first:first + self.batch_videos], self.device)
            video = self.head.encode_video(batch["clip_frames"], batch["clip_frame_mask"], batch["clip_mask"],
                                           batch["video_frames"], batch["video_mask"])
            text = self.head.encode_text(batch["words"], batch["word_mask"], batch["clip_mask"])
            parts["clip"].append(video.items[batch["clip_mask"]])
            parts["sentence"].append(text.items[batch["clip_mask"]])
            parts["video"].append(video.whole)
            parts["paragraph"].append(text.whole)
        return {k: F.normalize(torch.cat(v).float(), dim=-1).cpu() for k, v in parts.items()}


def pad(items: list[VideoItem], device) -> dict[str, torch.Tensor]:
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
