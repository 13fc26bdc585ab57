"""The identity of a source video file, so that a replaced file is noticed and re-extracted.

identity = size, mtime and a SHA-256 of the size plus the first and last MiB. A rerun first compares size and
mtime (one stat); only when one differs does it read the two MiB, so a file that was merely copied or touched
(same content) is not re-extracted, while any edit of its start, its end or its length is noticed.
"""
from __future__ import annotations

import hashlib
import os

EDGE_BYTES = 1 << 20


def identity(path: str) -> dict | None:
    """{size, mtime, hash} of the file at `path`; None when it cannot be read."""
    try:
        st = os.stat(path)
        return {"size": st.st_size, "mtime": st.st_mtime, "hash": content_hash(path, st.st_size)}
    except OSError:
        return None


def content_hash(path: str, size: int) -> str:
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            h.update(f.read(EDGE_BYTES))
    return h.hexdigest()[:32]


def changed(recorded: dict | None, path: str) -> bool:
    """True when the file at `path` is not the one `recorded` describes (unknown records never count)."""
    if not recorded or not path:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False  # gone: the stored features stay; there is nothing to extract them from again
    if st.st_size == recorded["size"] and st.st_mtime == recorded["mtime"]:
        return False
    try:
        return st.st_size != recorded["size"] or content_hash(path, st.st_size) != recorded["hash"]
    except OSError:
        return False
