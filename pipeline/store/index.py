"""The store index: which complete shards exist and what they hold, opened with a bounded number of requests.

    index/CURRENT.json   {"format": 2, "runs": [{"name", "videos", "rows"}...], "consumed": [...], "retired": [...]}
    index/run-*/         immutable runs (`pipeline.store.runs`): column files + meta.json (written last)
    journal/<shard>      shards committed since the last consolidation; their markers are read on open

Opening reads CURRENT.json, one meta.json per run and the journal's markers: a handful of requests whatever the
number of shards, because the journal is consolidated whenever it grows past `JOURNAL_LIMIT` (and at the end
of every run) and runs are merged geometrically (`pipeline.store.consolidate`). A video is served by the
newest run that holds it; the journal counts as the newest run. Runs are sorted by video id and mapped, so
opening builds no Python object per video, caption or segment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.store import layout
from pipeline.store.columns import FileColumns
from pipeline.store.errors import StoreCorruptError, StoreError
from pipeline.store.fs import StoreFS
from pipeline.store.runs import Run, memory_run

JOURNAL_LIMIT = 256  # shards in the journal before the writer consolidates: bounds the markers read per open
EMPTY_CURRENT = {"format": layout.SCHEMA_VERSION, "runs": [], "consumed": [], "retired": []}
UPGRADE = "python -m pipeline.upgrade --store {url}"


@dataclass(frozen=True)
class VideoRecord:
    """What the store holds for one video (for planning and verification)."""

    segment_ids: set[str]
    failures: list[tuple[str | None, str]]  # (segment id or None for the captions, stage)
    source: dict | None


@dataclass
class Index:
    runs: list[Run]             # oldest first; the journal's shards, if any, last
    current: dict               # CURRENT.json as read
    journal: list[str]          # shards read from their markers (not yet consolidated)

    def locate(self, video_id: str) -> tuple[Run, int] | None:
        """The run serving `video_id` and its position there (the newest run that holds it)."""
        for run in reversed(self.runs):
            i = run.ids.find(video_id)
            if i >= 0:
                return run, i
        return None

    def record(self, video_id: str) -> VideoRecord | None:
        loc = self.locate(video_id)
        if loc is None:
            return None
        run, i = loc
        rows = run.video(i)
        seg = run.table("segments", ("id",), *rows.seg)["id"]
        fails = run.table("failures", ("segment_id", "stage"), *rows.fail)
        return VideoRecord(set(seg), [(s or None, st) for s, st in zip(fails["segment_id"], fails["stage"])],
                           run.source(i))

    def live(self) -> list[tuple[Run, np.ndarray | None]]:
        """Each run with a mask of its videos that no newer run replaces (None: all of them)."""
        out, newer = [], []
        for run in reversed(self.runs):
            if not newer:
                out.append((run, None))
            else:
                mask = np.ones(len(run), bool)
                for other in newer:
                    for i in range(len(other)):
                        j = run.ids.find(other.ids[i]) if len(run) else -1
                        if j >= 0:
                            mask[j] = False
                out.append((run, mask))
            newer.append(run)
        return out[::-1]

    @property
    def n_shards(self) -> int:
        return sum(run.cols.length("shards.name") for run in self.runs)


def read_current(fs: StoreFS) -> dict:
    """CURRENT.json, which every store has from its creation on: a missing one is damage, never an empty store."""
    try:
        current = fs.read_json(layout.CURRENT)
    except FileNotFoundError:
        raise StoreCorruptError(f"{fs.path(layout.CURRENT)}: missing; rebuild the index from the shards with "
                                f"`{UPGRADE.format(url=fs.url)}`") from None
    except StoreError as exc:
        raise StoreCorruptError(f"{exc}; rebuild the index from the shards with `{UPGRADE.format(url=fs.url)}`") from None
    if not isinstance(current, dict) or current.get("format") != layout.SCHEMA_VERSION or "runs" not in current:
        raise StoreCorruptError(f"{fs.path(layout.CURRENT)}: not an index of this version; rebuild it with "
                                f"`{UPGRADE.format(url=fs.url)}`")
    return current


def open_run(fs: StoreFS, name: str) -> Run:
    directory = f"{layout.INDEX_DIR}/{name}"
    try:
        meta = fs.read_json(f"{directory}/meta.json")
    except FileNotFoundError:
        raise StoreCorruptError(f"{fs.path(directory)}: index run missing; rebuild the index with "
                                f"`{UPGRADE.format(url=fs.url)}`") from None
    except StoreError as exc:
        raise StoreCorruptError(f"{exc}; rebuild the index with `{UPGRADE.format(url=fs.url)}`") from None
    cols = FileColumns(fs, directory, meta)
    cols.check_sizes()
    return Run(name, cols, meta)


def journal_shards(fs: StoreFS, current: dict) -> list[str]:
    consumed = set(current.get("consumed", ()))
    return [n for n in fs.list_names(layout.JOURNAL_DIR) if n not in consumed and layout.is_shard_name(n)]


def read_markers(fs: StoreFS, shards: list[str]) -> list[dict]:
    """The markers of `shards`, oldest commit first; a journal entry without its marker is damage."""
    raw = fs.read_many([layout.marker_path(s) for s in shards])
    markers = []
    for shard in shards:
        data = raw[layout.marker_path(shard)]
        if data is None:
            raise StoreCorruptError(f"{fs.path(layout.marker_path(shard))}: missing, but the journal lists shard "
                                    f"{shard}; rebuild the index with `{UPGRADE.format(url=fs.url)}`")
        markers.append(parse_marker(fs, shard, data))
    return sorted(markers, key=lambda m: (m["committed"], m["shard"]))


def parse_marker(fs: StoreFS, shard: str, data: bytes) -> dict:
    import json

    try:
        marker = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreCorruptError(f"{fs.path(layout.marker_path(shard))}: damaged marker ({exc}); delete the shard's "
                                f"directory and rerun extraction, or rebuild with `{UPGRADE.format(url=fs.url)}`") from exc
    if marker.get("format") != layout.SCHEMA_VERSION:
        raise StoreError(f"{fs.path(layout.marker_path(shard))}: a shard of store version "
                         f"{marker.get('schema_version', marker.get('format'))}; upgrade with "
                         f"`{UPGRADE.format(url=fs.url)}`")
    return marker


def load_index(fs: StoreFS, specs: dict[str, dict]) -> Index:
    """Open the index: CURRENT's runs plus the journal's shards as an in-memory run."""
    current = read_current(fs)
    runs = [open_run(fs, r["name"]) for r in current["runs"]]
    journal = journal_shards(fs, current)
    if journal:
        markers = read_markers(fs, journal)
        check_marker_specs(fs, markers, specs)
        runs.append(memory_run(markers, specs))
    return Index(runs, current, journal)


def check_marker_specs(fs: StoreFS, markers: list[dict], specs: dict[str, dict]) -> None:
    for m in markers:
        if m.get("specs") != specs:
            raise StoreCorruptError(f"{fs.path(layout.marker_path(m['shard']))}: shard written with other encoder "
                                    f"settings than the store root's; it cannot be served from this store")
