"""Column files: the index's tables as flat binary columns that can be memory-mapped.

A numeric column is one file of little-endian values (`TABLE.COL.bin`); a string column is two, int64 offsets
(`.off.bin`, n + 1 values) and UTF-8 bytes (`.str.bin`). Lengths, dtypes, byte sizes and CRC-32C of every file
are kept in the run's meta, so a truncated file is refused before it is mapped. Local columns are
memory maps: opening costs no reads, and every process (DataLoader workers included) shares the page cache.
Remote columns are fetched by byte range, or downloaded once into a local cache (`full`) and mapped there.
"""
from __future__ import annotations

import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from pipeline.store.errors import StoreCorruptError
from pipeline.store.fs import StoreFS


@dataclass(frozen=True)
class Strings:
    """Encoded strings: offsets [n + 1] (int64, from 0) into UTF-8 bytes."""

    offsets: np.ndarray
    data: bytes

    @staticmethod
    def of(values) -> "Strings":
        encoded = [str(v).encode() for v in values]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return Strings(offsets, b"".join(encoded))


def decode_strings(offsets: np.ndarray, data) -> np.ndarray:
    base = int(offsets[0]) if len(offsets) else 0
    raw = bytes(data)
    out = np.empty(max(0, len(offsets) - 1), object)
    for i in range(len(out)):
        out[i] = raw[offsets[i] - base:offsets[i + 1] - base].decode()
    return out


class _File:
    """One output file with a running size and CRC."""

    def __init__(self, fs: StoreFS, rel: str):
        self.rel, self.handle, self.size, self.crc = rel, fs.open_write(rel), 0, 0

    def write(self, data) -> None:
        data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.handle.write(data)
        self.size += len(data)
        self.crc = google_crc32c.extend(self.crc, bytes(data))

    def close(self) -> dict:
        self.handle.close()
        return {"bytes": self.size, "crc32c": self.crc}


class ColumnWriter:
    """Appends rows to the column files under `directory`; `close` returns the columns' meta."""

    def __init__(self, fs: StoreFS, directory: str):
        self.fs, self.dir = fs, directory.rstrip("/")
        self.files: dict[str, _File] = {}
        self.meta: dict[str, dict] = {}

    def _file(self, name: str) -> _File:
        if name not in self.files:
            self.files[name] = _File(self.fs, f"{self.dir}/{name}")
        return self.files[name]

    def append(self, table: str, columns: dict) -> None:
        for col, values in columns.items():
            key = f"{table}.{col}"
            if isinstance(values, Strings) or (isinstance(values, np.ndarray) and values.dtype == object) \
                    or isinstance(values, list):
                self._append_strings(key, values if isinstance(values, Strings) else Strings.of(values))
            else:
                self._append_numbers(key, np.asarray(values))

    def _append_numbers(self, key: str, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, values.dtype.newbyteorder("<"))
        m = self.meta.setdefault(key, {"kind": "num", "dtype": values.dtype.str, "shape": list(values.shape[1:]),
                                       "length": 0})
        if m["dtype"] != values.dtype.str or m["shape"] != list(values.shape[1:]):
            raise ValueError(f"column {key}: {values.dtype.str}{list(values.shape[1:])} after {m['dtype']}{m['shape']}")
        self._file(f"{key}.bin").write(values.tobytes())
        m["length"] += len(values)

    def _append_strings(self, key: str, s: Strings) -> None:
        m = self.meta.setdefault(key, {"kind": "str", "length": 0, "bytes": 0})
        off = self._file(f"{key}.off.bin")
        if m["length"] == 0 and off.size == 0:
            off.write(np.zeros(1, "<i8").tobytes())
        off.write((s.offsets[1:] - s.offsets[0] + m["bytes"]).astype("<i8").tobytes())
        self._file(f"{key}.str.bin").write(s.data)
        m["length"] += len(s.offsets) - 1
        m["bytes"] += len(s.data)

    def close(self) -> dict:
        files = {name: f.close() for name, f in self.files.items()}
        return {"columns": self.meta, "files": files}


class MemColumns:
    """Columns held in memory (the journal's recent shards): numeric arrays and object arrays of str."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns

    def length(self, key: str) -> int:
        return len(self.columns[key])

    def get(self, key: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        return self.columns[key][lo:hi]

    def full(self, key: str, scan: bool = False) -> np.ndarray:
        return self.columns[key]

    def strings(self, key: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        return self.columns[key][lo:hi]

    def raw_strings(self, key: str, lo: int, hi: int) -> Strings:
        return Strings.of(self.columns[key][lo:hi])


REMOTE_WHOLE = 64 << 20  # remote column files up to this size are downloaded whole and cached


class FileColumns:
    """The columns of one run directory, mapped (local) or read by range (remote)."""

    def __init__(self, fs: StoreFS, directory: str, meta: dict, cache_root: str | None = None):
        self.fs, self.dir, self.meta = fs, directory.rstrip("/"), meta
        self.cols, self.files = meta["columns"], meta["files"]
        self.maps: dict[str, np.ndarray] = {}
        self.cache = None if fs.local else Path(cache_root or default_cache()) / _cache_key(f"{fs.url}|{self.dir}")

    def check_sizes(self) -> None:
        """Refuse a truncated or missing local column file before it is mapped (one stat per file)."""
        if not self.fs.local:
            return
        for name, info in self.files.items():
            path = self.fs.path(f"{self.dir}/{name}")
            size = os.path.getsize(path) if os.path.exists(path) else -1
            if size != info["bytes"]:
                raise StoreCorruptError(f"{path}: {'missing' if size < 0 else f'{size} bytes'}, the index wrote "
                                 f"{info['bytes']}; rebuild the index with `python -m pipeline.upgrade --store "
                                 f"{self.fs.url}`")

    def length(self, key: str) -> int:
        return self.cols[key]["length"]

    def get(self, key: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        c = self.cols[key]
        lo, hi, _ = slice(lo, hi).indices(c["length"])
        hi = max(lo, hi)
        if self._mappable(f"{key}.bin"):
            return self._map(key)[lo:hi]
        dtype = np.dtype(c["dtype"])
        row = dtype.itemsize * int(np.prod(c["shape"], dtype=np.int64))
        raw = self.fs.read_range(f"{self.dir}/{key}.bin", lo * row, hi * row) if hi > lo else b""
        return np.frombuffer(raw, dtype).reshape(hi - lo, *c["shape"])

    def full(self, key: str, scan: bool = False) -> np.ndarray:
        """A whole numeric column, mapped; `scan`: for one pass in order (a mapping of its own, with readahead)."""
        c = self.cols[key]
        if c["kind"] == "str":
            raise TypeError(f"{key} is a string column")
        path = self.fs.path(f"{self.dir}/{key}.bin") if self.fs.local else str(self._download(f"{key}.bin"))
        if scan and self.files[f"{key}.bin"]["bytes"]:
            flat = _map(path, c["dtype"], mmap.MADV_SEQUENTIAL if hasattr(mmap, "MADV_SEQUENTIAL") else None)
            return flat.reshape(-1, *c["shape"]) if c["shape"] else flat
        return self._map(key)

    def strings(self, key: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        s = self.raw_strings(key, *slice(lo, hi).indices(self.cols[key]["length"])[:2])
        return decode_strings(s.offsets, s.data)

    def string_arrays(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(offsets [n + 1], UTF-8 bytes) of a whole string column, mapped."""
        if not self.fs.local:
            self._download(f"{key}.off.bin"), self._download(f"{key}.str.bin")
        return self._raw(f"{key}.off.bin", "<i8"), self._raw(f"{key}.str.bin")

    def raw_strings(self, key: str, lo: int, hi: int) -> Strings:
        """Rows [lo, hi) of a string column still encoded (copied between runs without decoding)."""
        hi = max(lo, hi)
        name = f"{key}.off.bin"
        if self._mappable(name):
            off = np.asarray(self._raw(name, "<i8")[lo:hi + 1])
        else:
            off = np.frombuffer(self.fs.read_range(f"{self.dir}/{name}", lo * 8, (hi + 1) * 8), "<i8")
        if self._mappable(f"{key}.str.bin"):
            data = self._raw(f"{key}.str.bin")[off[0]:off[-1]].tobytes()
        else:
            data = self.fs.read_range(f"{self.dir}/{key}.str.bin", int(off[0]), int(off[-1])) if off[-1] > off[0] else b""
        return Strings(off - off[0], data)

    # ---- internals ---------------------------------------------------------------------------------
    def _mappable(self, name: str) -> bool:
        """Local files always; remote ones once cached, and small ones (fetched whole on first use: one request
        instead of one per lookup)."""
        if self.fs.local or self._cached(name):
            return True
        if self.files[name]["bytes"] <= REMOTE_WHOLE:
            self._download(name)
            return True
        return False

    def _map(self, key: str) -> np.ndarray:
        if key not in self.maps:
            c = self.cols[key]
            flat = self._raw(f"{key}.bin", c["dtype"])
            self.maps[key] = flat.reshape(-1, *c["shape"]) if c["shape"] else flat
        return self.maps[key]

    def _raw(self, name: str, dtype: str = "u1") -> np.ndarray:
        key = f"raw:{name}"
        if key not in self.maps:
            path = self.fs.path(f"{self.dir}/{name}") if self.fs.local else str(self._download(name))
            size = self.files[name]["bytes"]
            random = mmap.MADV_RANDOM if hasattr(mmap, "MADV_RANDOM") else None
            self.maps[key] = _map(path, dtype, random) if size else np.zeros(0, dtype)
        return self.maps[key]

    def _cached(self, name: str) -> bool:
        return self.cache is not None and (self.cache / name).exists()

    def _download(self, name: str) -> Path:
        """Fetch a remote column file into the local cache once (checked), for mapping."""
        target = self.cache / name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self.fs.read_bytes(f"{self.dir}/{name}")
        info = self.files[name]
        if len(data) != info["bytes"] or int(google_crc32c.value(data)) != info["crc32c"]:
            raise StoreCorruptError(f"{self.fs.path(self.dir)}/{name}: {len(data)} bytes that do not match the index's "
                             f"checksum; rebuild it with `python -m pipeline.upgrade --store {self.fs.url}`")
        tmp = target.with_name(f"{name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target


def _map(path: str, dtype, advice: int | None) -> np.ndarray:
    """A read-only mapping. Lookups map with MADV_RANDOM: without readahead a lookup maps the pages it touches
    rather than a window around them (1,000 random videos would otherwise map ~1 GB of index); a scan in order
    maps with MADV_SEQUENTIAL."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if advice is not None and hasattr(mapped, "madvise"):
        mapped.madvise(advice)
    return np.frombuffer(mapped, dtype)


def default_cache() -> str:
    """Where remote index files are cached: $GROUNDCACHE_CACHE, else ~/.cache/groundcache."""
    return os.environ.get("GROUNDCACHE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "groundcache")


def _cache_key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:20]
