"""Planning an extraction run: which manifest videos need work, grouped into shards.

A video is the unit of work: all its segments and captions go to one shard, and a shard that holds a video
replaces whatever the store held for it before (the index serves the newest). A video already in the store
is skipped, unless
- its source file changed since it was extracted (`--on-change reextract`, the default; `keep` leaves the
  old features, `refuse` stops before any work), or it was missing and has appeared since;
- the manifest asks for segments it does not have (features or a failure record);
- it has failure records and `--retry-failed` is given;
- its shard is damaged and `--repair` is given.
So a killed run resumes where it stopped and rerunning a complete store does nothing.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

from pipeline import sources
from pipeline.store import layout
from pipeline.store.index import Index

ON_CHANGE = ("reextract", "keep", "refuse")


class PlanError(ValueError):
    """The run cannot start as asked (the message lists the videos)."""


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


@dataclass(frozen=True)
class PlanOptions:
    on_change: str = "reextract"
    retry_failed: bool = False
    repair: frozenset[str] = frozenset()  # videos whose shard verification found damaged
    videos_per_shard: int = 8
    workers: int = 1


@dataclass
class Plan:
    shards: list[ShardPlan]
    reasons: Counter = field(default_factory=Counter)   # new, changed, appeared, incomplete, retry, repair
    kept_changed: list[str] = field(default_factory=list)


def _why(vid: str, path: str, index: Index | None, wanted: list[dict], opts: PlanOptions) -> str | None:
    """Why `vid` needs extracting now, or None when the store already has it as the manifest asks."""
    rec = index.record(vid) if index is not None else None
    if rec is None:
        return "new"
    if vid in opts.repair:
        return "repair"
    if sources.changed(rec.source, path):
        return "changed"
    if rec.source is None and rec.failures and all(st == "probe" for _, st in rec.failures) and os.path.isfile(path):
        return "appeared"
    if opts.retry_failed and rec.failures:
        return "retry"
    stored = rec.segment_ids | {s for s, _ in rec.failures if s}
    if any(s["segment_id"] not in stored for s in wanted):
        return "incomplete"
    return None


def plan_shards(videos: list[dict], segments: list[dict], captions: list[dict], index: Index | None,
                opts: PlanOptions = PlanOptions()) -> Plan:
    """Shards of at most `videos_per_shard` videos covering every video that needs work.

    With few videos, shards shrink so that every worker gets at least two."""
    by_video: dict[str, list[dict]] = {}
    for s in segments:
        by_video.setdefault(s["video_id"], []).append(s)
    caps: dict[str, list[dict]] = {}
    for c in captions:
        caps.setdefault(c["video_id"], []).append(c)
    info = {v["video_id"]: v for v in videos}
    plan, refused, work = Plan([]), [], []
    for vid, segs in sorted(by_video.items()):
        path = str(info.get(vid, {}).get("path") or "")
        why = _why(vid, path, index, segs, opts)
        if why == "changed" and opts.on_change != "reextract":
            (plan.kept_changed if opts.on_change == "keep" else refused).append(vid)
            continue
        if why is None:
            continue
        plan.reasons[why] += 1
        work.append(VideoWork(vid, path, tuple(sorted(segs, key=lambda s: (s["start"], s["segment_id"]))),
                              tuple(caps.get(vid, ())),
                              info[vid].get("probe_error") if vid in info else "video not listed in the manifest's videos"))
    if refused:
        raise PlanError(f"{len(refused)} source videos changed since they were extracted ({', '.join(refused[:5])}"
                        f"{' ...' if len(refused) > 5 else ''}); --on-change refuse stops here: rerun with "
                        f"--on-change reextract to re-extract them or keep to keep their old features")
    if work:
        per = max(1, min(opts.videos_per_shard, math.ceil(len(work) / (2 * max(1, opts.workers)))))
        plan.shards = [ShardPlan(layout.new_shard_name(), tuple(work[i:i + per])) for i in range(0, len(work), per)]
    return plan
