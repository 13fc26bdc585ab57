"""The store layout: the only place that knows names, dtypes, chunking and paths.

    STORE/                          a local directory or an fsspec URL (memory://, file://, s3://, ...)
      zarr.json                     root group; attrs["groundcache"] = {schema_version, encoders: {name: spec}}
      _LOCK.json                    held by the one extraction driver writing the store
      index/*.parquet               consolidated copy of all shard indexes (rebuilt after each run)
      shards/<shard>/               written by exactly one writer
        <enc>/                      per-frame (clip) or per-window (s3d) features, concatenated along time
          global  float16 [N, D]    pooled/CLS vector
          grid    float16 [N, *grid, D]   7x7 (clip) or T'x7x7 (s3d) tokens
          times   float64 [N]       seconds (frame time; s3d: window start)
          valid   int16   [N]       s3d only: real frames in the window (the last window is padded)
        <enc>_text/                 per caption, row = caption row of the shard index
          sentence float16 [C, D]   words float16 [C, W, D]   mask bool [C, W]
        _COMPLETE.json              written last: the shard index (segments with their row ranges,
                                    captions, failure records). A shard without it does not exist.

Each encoder group's attrs carry its encoder spec; readers refuse a store whose spec differs.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

SCHEMA_VERSION = 1
ATTRS_KEY = "groundcache"
SHARDS_DIR = "shards"
INDEX_DIR = "index"
MARKER = "_COMPLETE.json"
LOCK = "_LOCK.json"
TARGET_CHUNK_BYTES = 4 << 20  # DESIGN: chunks of roughly 1-8 MB


@dataclass(frozen=True)
class Field:
    name: str
    dtype: str
    shape: tuple[int, ...]  # per-row shape


def frame_fields(spec: dict) -> tuple[Field, ...]:
    """The per-frame (or per-window) arrays of an encoder group, from its spec."""
    dims, grid = spec["dims"], tuple(spec["grid"])
    fields = [Field("global", "float16", (dims["global"],)), Field("grid", "float16", (*grid, dims["grid"])),
              Field("times", "float64", ())]
    if spec.get("window"):
        fields.append(Field("valid", "int16", ()))
    return tuple(fields)


def text_fields(spec: dict) -> tuple[Field, ...]:
    dims, w = spec["dims"], spec["max_words"]
    return (Field("sentence", "float16", (dims["sentence"],)), Field("words", "float16", (w, dims["words"])),
            Field("mask", "bool", (w,)))


def text_group(encoder: str) -> str:
    return f"{encoder}_text"


def chunk_rows(field: Field) -> int:
    """Rows per chunk: a power of two giving chunks of about TARGET_CHUNK_BYTES."""
    row_bytes = np.dtype(field.dtype).itemsize * math.prod(field.shape)
    rows = max(1, TARGET_CHUNK_BYTES // max(1, row_bytes))
    return int(min(1 << 16, 1 << int(math.log2(rows))))


def shard_name(segment_ids: list[str]) -> str:
    """Content-addressed: the same work gets the same name, so a rerun overwrites its own debris."""
    digest = hashlib.sha1("\n".join(sorted(segment_ids)).encode()).hexdigest()[:16]
    return f"sh-{digest}"


def shard_path(name: str) -> str:
    return f"{SHARDS_DIR}/{name}"


def marker_path(name: str) -> str:
    return f"{SHARDS_DIR}/{name}/{MARKER}"


class StoreFS:
    """Plain file operations on the store root (markers, JSON, parquet) for a path or an fsspec URL."""

    def __init__(self, root: str | os.PathLike):
        self.url = str(root)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = isinstance(self.fs, LocalFileSystem)

    def path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}"

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_json(self, rel: str):
        with self.fs.open(self.path(rel), "rb") as f:
            return json.loads(f.read())

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomic on local disks (write + rename); object stores write objects atomically anyway."""
        path = self.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            self.fs.pipe(path, data)

    def write_json(self, rel: str, obj) -> None:
        self.write_bytes(rel, json.dumps(obj, sort_keys=True, allow_nan=False).encode())

    def remove_tree(self, rel: str) -> None:
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel), recursive=True)

    def remove(self, rel: str) -> None:
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel))

    def list_shards(self) -> tuple[list[str], list[str]]:
        """(complete shard names, incomplete shard names)."""
        base = self.path(SHARDS_DIR)
        if not self.fs.exists(base):
            return [], []
        names = sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(base, detail=True)
                       if e["type"] == "directory")
        done = {p.rstrip("/").rsplit("/", 2)[-2] for p in self.fs.glob(f"{base}/*/{MARKER}")}
        return [n for n in names if n in done], [n for n in names if n not in done]


def zarr_store(root: str | os.PathLike):
    """The zarr StoreLike for a root: LocalStore for paths, FsspecStore for URLs."""
    from zarr.storage import FsspecStore, LocalStore

    root = str(root)
    if root.startswith("file://"):
        root = root[len("file://"):]
    if "://" not in root:
        os.makedirs(root, exist_ok=True)
        return LocalStore(root)
    return FsspecStore.from_url(root)
