"""Chunk bytes: the codec every array uses, checksums, and verified reads of row ranges.

The store is a zarr v3 hierarchy (any zarr client reads it): each array's codecs are `bytes` (little endian)
then Blosc/zstd level 3 with byte shuffle (none for bool), and every chunk has the full chunk shape (the last
one padded with zeros). The writer encodes chunks itself so that it knows their bytes: the CRC-32C of each
chunk's stored bytes and its size go into the shard's marker and the index. The reader fetches chunk bytes,
checks size and CRC, and decodes them; a missing chunk or a wrong checksum is a `StoreCorruptError`, never
zeros. (zarr-python's own read path costs ~2 ms per array read; fetching and decoding here costs ~20 us.)
"""
from __future__ import annotations

from collections import OrderedDict

import google_crc32c
import numpy as np
from numcodecs import Blosc

from pipeline.store.errors import StoreCorruptError
from pipeline.store.layout import Field, chunk_rows

CLEVEL = 3


def zarr_compressor(field: Field):
    """The compressor declared in the array's zarr metadata (what `encode` produces)."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=CLEVEL, shuffle="noshuffle" if field.dtype == "bool" else "shuffle")


def _blosc(field: Field) -> Blosc:
    return Blosc(cname="zstd", clevel=CLEVEL, shuffle=Blosc.NOSHUFFLE if field.dtype == "bool" else Blosc.SHUFFLE)


def encode(field: Field, rows: np.ndarray) -> bytes:
    """One chunk's stored bytes from up to chunk_rows(field) rows (padded with zeros to the chunk shape)."""
    n = chunk_rows(field)
    data = np.zeros((n, *field.shape), np.dtype(field.dtype).newbyteorder("<"))
    data[: len(rows)] = rows
    return bytes(_blosc(field).encode(data))


def decode(field: Field, data: bytes) -> np.ndarray:
    raw = _blosc(field).decode(data)
    return np.frombuffer(raw, np.dtype(field.dtype).newbyteorder("<")).reshape(chunk_rows(field), *field.shape)


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


class ChunkCache:
    """Decoded chunks by key, bounded by bytes (a window read twice, or `times` then features, decode once)."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes, self.used = max_bytes, 0
        self.items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str) -> np.ndarray | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        self.items[key] = value
        self.used += value.nbytes
        while self.used > self.max_bytes:
            _, old = self.items.popitem(last=False)
            self.used -= old.nbytes


def check_chunk(key: str, data: bytes | None, crc: int, size: int, where: str) -> None:
    """Refuse a missing chunk or one whose bytes are not what was committed."""
    if data is None:
        raise StoreCorruptError(f"{where}: chunk {key} is missing (the index says it holds rows); {REPAIR}")
    if len(data) != size or crc32c(data) != crc:
        raise StoreCorruptError(f"{where}: chunk {key} is damaged ({len(data)} bytes, crc32c {crc32c(data):08x}; "
                                f"committed {size} bytes, crc32c {crc:08x}); {REPAIR}")


REPAIR = ("run `python -m pipeline.verify --store STORE --manifest MANIFEST` and repair with "
          "`python -m pipeline.extract --repair ...`")
