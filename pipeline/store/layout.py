"""The store layout: the only place that knows names, dtypes, chunking and paths.

    STORE/                          a local directory or an fsspec URL (memory://, file://, s3://, gs://, ...)
      zarr.json                     root group; attrs["groundcache"] = {schema_version, encoders: {name: spec}}
      _LOCK.json                    held by the one extraction driver writing the store (atomic create)
      index/CURRENT.json            the consolidated index: its runs (written last, atomically)
      index/run-*/                  one immutable run: column files sorted by video id (`pipeline.store.index`)
      journal/<shard>               shards committed since the last consolidation (empty objects)
      inflight/<shard>              shards being written; a shard listed here and without a marker is debris
      shards/<shard>/               written by exactly one writer
        <enc>/                      per-frame (clip) or per-window (s3d) features, concatenated along time
          global  float16 [N, D]    pooled/CLS vector
          grid    float16 [N, *grid, D]   7x7 (clip) or T'x7x7 (s3d) tokens; with grid_dtype int8:
          grid    int8    [N, *grid, D] and grid_scale float16 [N, *grid]   (value = int8 * scale)
          times   float64 [N]       seconds (frame time; s3d: window start)
          valid   int16   [N]       s3d only: real frames in the window (the last window is padded)
        <enc>_text/                 per caption, row = caption row of the shard index
          sentence float16 [C, D]   words float16 [C, W, D]   mask bool [C, W]
        _COMPLETE.json              written last: the shard's own index (segments with row ranges, captions,
                                    failures, sources, specs, chunk checksums). Without it the shard does not exist.

Every chunk of every array is written (none is left to a fill value), so a missing chunk is an error.
Each encoder group's attrs carry its encoder spec; readers refuse a store whose spec differs.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 2
ATTRS_KEY = "groundcache"
SHARDS_DIR = "shards"
INDEX_DIR = "index"
JOURNAL_DIR = "journal"
INFLIGHT_DIR = "inflight"
CURRENT = f"{INDEX_DIR}/CURRENT.json"
MARKER = "_COMPLETE.json"
LOCK = "_LOCK.json"
ROOT_META = "zarr.json"
# What a store root may hold; anything else means the root is not (only) a store and is never written to.
ROOT_ENTRIES = frozenset({ROOT_META, LOCK, SHARDS_DIR, INDEX_DIR, JOURNAL_DIR, INFLIGHT_DIR})
TARGET_CHUNK_BYTES = 4 << 20  # DESIGN: chunks of roughly 1-8 MB
GRID_DTYPES = ("float16", "int8")
_SHARD_RE = re.compile(r"^sh-[0-9a-z-]{1,64}$")


@dataclass(frozen=True)
class Field:
    name: str
    dtype: str
    shape: tuple[int, ...]  # per-row shape


# Keys of a store's encoder spec that say how features are kept on disk, not what computed them.
STORAGE_KEYS = ("grid_dtype",)


def grid_dtype(spec: dict) -> str:
    return spec.get("grid_dtype", "float16")


def frame_fields(spec: dict) -> tuple[Field, ...]:
    """The per-frame (or per-window) arrays of an encoder group as stored, from its spec."""
    dims, grid = spec["dims"], tuple(spec["grid"])
    fields = [Field("global", "float16", (dims["global"],)), Field("grid", grid_dtype(spec), (*grid, dims["grid"])),
              Field("times", "float64", ())]
    if grid_dtype(spec) == "int8":
        fields.append(Field("grid_scale", "float16", grid))
    if spec.get("window"):
        fields.append(Field("valid", "int16", ()))
    return tuple(fields)


def frame_outputs(spec: dict) -> tuple[str, ...]:
    """What a reader returns for an encoder group (the int8 grid and its scale come back as one float16 grid)."""
    return tuple(f.name for f in frame_fields(spec) if f.name != "grid_scale")


def text_fields(spec: dict) -> tuple[Field, ...]:
    dims, w = spec["dims"], spec["max_words"]
    return (Field("sentence", "float16", (dims["sentence"],)), Field("words", "float16", (w, dims["words"])),
            Field("mask", "bool", (w,)))


def text_group(encoder: str) -> str:
    return f"{encoder}_text"


def groups(specs: dict[str, dict]) -> list[tuple[str, tuple[Field, ...]]]:
    """(group name, its fields) of every array group of a store, in a fixed order."""
    out = []
    for enc in sorted(specs):
        out += [(enc, frame_fields(specs[enc])), (text_group(enc), text_fields(specs[enc]))]
    return out


def arrays(specs: dict[str, dict]) -> list[tuple[str, Field]]:
    """(group, field) of every array of a shard, in the fixed order the index keeps their checksums."""
    return [(g, f) for g, fields in groups(specs) for f in fields]


def chunk_rows(field: Field) -> int:
    """Rows per chunk: a power of two giving chunks of about TARGET_CHUNK_BYTES."""
    row_bytes = np.dtype(field.dtype).itemsize * math.prod(field.shape)
    rows = max(1, TARGET_CHUNK_BYTES // max(1, row_bytes))
    return int(min(1 << 16, 1 << int(math.log2(rows))))


def n_chunks(rows: int, field: Field) -> int:
    return -(-rows // chunk_rows(field))


def new_shard_name() -> str:
    """Unique per planned shard: a re-extracted video never overwrites the shard that still serves it."""
    return f"sh-{uuid.uuid4().hex[:20]}"


def is_shard_name(name: str) -> bool:
    return bool(_SHARD_RE.match(name))


def shard_path(name: str) -> str:
    if not is_shard_name(name):
        raise ValueError(f"not a shard name: {name!r}")
    return f"{SHARDS_DIR}/{name}"


def marker_path(name: str) -> str:
    return f"{shard_path(name)}/{MARKER}"


def array_path(shard: str, group: str, name: str) -> str:
    return f"{shard_path(shard)}/{group}/{name}"


def chunk_key(shard: str, group: str, field: Field, k: int) -> str:
    """zarr v3 default chunk key (separator '/'): chunk k along rows, 0 along every other axis."""
    return f"{array_path(shard, group, field.name)}/c/{k}" + "/0" * len(field.shape)


def journal_path(shard: str) -> str:
    shard_path(shard)
    return f"{JOURNAL_DIR}/{shard}"


def inflight_path(shard: str) -> str:
    shard_path(shard)
    return f"{INFLIGHT_DIR}/{shard}"
