"""Small checked accessors used by the benchmark readers: every failure becomes an AnnotationError that
names the file and the key path being read."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

from manifests.errors import AnnotationError


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    # json keeps the last of two equal keys in silence: one video id would hide another
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return d


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; bad JSON, bad UTF-8 or a key given twice in one object raises AnnotationError naming
    the file and the position or key."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise AnnotationError(path, f"key {exc.key!r}", "appears twice in one object (JSON would keep only the "
                                                         "last)") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"byte {exc.start}", "not UTF-8 text") from exc


def read_database(path: str | os.PathLike) -> dict:
    """The `{"database": {video id: entry}}` mapping of a YouCook2-style JSON file (YouCook2, YouCook2-BB)."""
    top = as_dict(read_json(path), path, "top level")
    return as_dict(get(top, "database", path, "top level"), path, "['database']")


def read_lines(path: str | os.PathLike) -> list[str]:
    """Lines of a UTF-8 text file (BOM removed, line endings and trailing blank lines dropped)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"byte {exc.start}", "not UTF-8 text") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_dict(value: Any, path, where: str) -> dict:
    if not isinstance(value, dict):
        raise AnnotationError(path, where, f"expected an object/dict, got {_type_name(value)}")
    return value


def as_list(value: Any, path, where: str) -> list:
    if not isinstance(value, list):
        raise AnnotationError(path, where, f"expected a list, got {_type_name(value)}")
    return value


def as_str(value: Any, path, where: str) -> str:
    if not isinstance(value, str):
        raise AnnotationError(path, where, f"expected a string, got {_type_name(value)}")
    return value


def as_int(value: Any, path, where: str) -> int:
    # bool is an int subclass in Python; JSON true/false is never a valid second or id
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(path, where, f"expected an integer, got {_type_name(value)} {value!r}")
    return value


def as_number(value: Any, path, where: str) -> float:
    """A finite number (JSON's NaN and Infinity extensions, and ints beyond a float, are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationError(path, where, f"expected a number, got {_type_name(value)} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise AnnotationError(path, where, f"expected a finite number, got {value!r}")
    return number


def as_optional_number(value: Any, path, where: str) -> float | None:
    return None if value is None else as_number(value, path, where)


def get(mapping: dict, key: str, path, where: str) -> Any:
    if key not in mapping:
        raise AnnotationError(path, where, f"missing key {key!r} (has {sorted(mapping)})")
    return mapping[key]


def as_box(value: Any, path, where: str) -> tuple[float, float, float, float]:
    """[x1, y1, x2, y2] of four numbers, returned as floats exactly as written (defects are not repaired)."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise AnnotationError(path, where, f"expected a box [x1, y1, x2, y2], got {value!r}")
    x1, y1, x2, y2 = (as_number(v, path, f"{where}[{i}]") for i, v in enumerate(value))
    return (x1, y1, x2, y2)


def as_second_key(key: str, path, where: str) -> int:
    """A JSON object key that must spell a non-negative whole second ("76")."""
    if not (key.isascii() and key.isdigit()):
        raise AnnotationError(path, where, f"key {key!r} is not a whole second")
    return int(key)


def unique_stems(directory: str | os.PathLike, files: Sequence[Path]) -> dict[str, Path]:
    """{stem: file} of per-video annotation files; two files with one stem (a.srt and a.SRT) would give one
    video two annotations, and are refused naming both."""
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise AnnotationError(directory, f"files {out[p.stem].name} and {p.name}",
                                  f"both give video id {p.stem!r}; keep one")
        out[p.stem] = p
    return out
