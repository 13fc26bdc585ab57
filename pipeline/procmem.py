"""A process's memory from /proc, in MB, for the scale benchmarks (Linux)."""
from __future__ import annotations

STATUS = ("RssAnon", "RssFile", "VmRSS")
SMAPS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Private_Dirty")


def status_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory: anonymous (heap, arrays) and file-backed (mapped index files: page cache, shared by every
    process that maps them and dropped under memory pressure)."""
    return _read(f"/proc/{pid}/status", STATUS)


def smaps_mb(pid: int | str = "self") -> dict[str, float]:
    """Proportional memory (PSS: a page shared by n processes counts 1/n in each) and private dirty memory (what
    exists only because this process does)."""
    return _read(f"/proc/{pid}/smaps_rollup", SMAPS)


def _read(path: str, keys: tuple[str, ...]) -> dict[str, float]:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) / 1024
    return out
