"""Planning an extraction run: which manifest entries still need work, grouped into shards.

All segments (and captions) of a video go to the same shard, so a video's reads touch one shard.
Work already in a complete shard (as features or as a failure record) is skipped, so rerunning a
complete store does nothing and a killed run resumes where it stopped. Shard names are derived from
their content, so replanning the same remaining work yields the same names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.store import layout
from pipeline.store.index import StoreIndex


@dataclass(frozen=True)
class VideoWork:
    video_id: str
    path: str
    segments: tuple[dict, ...]  # segment_id, video_id, start, end (None = to the end), fps
    captions: tuple[dict, ...]  # caption_id, video_id, start, end, text, kind
    probe_error: str | None = None  # what the manifest builder found (e.g. "missing: ...")


@dataclass(frozen=True)
class ShardPlan:
    name: str
    videos: tuple[VideoWork, ...]

    @property
    def n_segments(self) -> int:
        return sum(len(v.segments) for v in self.videos)


def done_segments(index: StoreIndex) -> set[str]:
    """Segment ids that already have features or a failure record in a complete shard."""
    done = set(index.segments.column("segment_id").to_pylist())
    done.update(s for s in index.failures.column("segment_id").to_pylist() if s is not None)
    return done


def plan_shards(videos: list[dict], segments: list[dict], captions: list[dict], index: StoreIndex,
                videos_per_shard: int = 8, workers: int = 1) -> list[ShardPlan]:
    """Shards of at most `videos_per_shard` videos covering every segment not yet done.

    With few videos, shards shrink so that every worker gets at least two."""
    done = done_segments(index)
    by_video: dict[str, list[dict]] = {}
    for s in segments:
        if s["segment_id"] not in done:
            by_video.setdefault(s["video_id"], []).append(s)
    caps: dict[str, list[dict]] = {}
    for c in captions:
        caps.setdefault(c["video_id"], []).append(c)
    info = {v["video_id"]: v for v in videos}
    work = [VideoWork(vid, str(info.get(vid, {}).get("path") or ""),
                      tuple(sorted(segs, key=lambda s: (s["start"], s["segment_id"]))), tuple(caps.get(vid, ())),
                      info[vid].get("probe_error") if vid in info else "video not listed in the manifest's videos")
            for vid, segs in sorted(by_video.items())]
    if not work:
        return []
    per = max(1, min(videos_per_shard, math.ceil(len(work) / (2 * max(1, workers)))))
    plans = []
    for i in range(0, len(work), per):
        group = tuple(work[i:i + per])
        plans.append(ShardPlan(layout.shard_name([s["segment_id"] for v in group for s in v.segments]), group))
    return plans
