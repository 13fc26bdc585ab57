"""The manifest format: what to extract, and the text and labels that go with it.

A manifest is a DIRECTORY:

    manifest.json     {"schema_version": 1, "builder": str, "args": {...}, "created": ISO-8601 UTC time}
    videos.parquet    one row per video
    segments.parquet  the extraction units
    captions.parquet  text with times (narrations, steps, labels, queries)
    boxes.parquet     optional: benchmark box labels

Tables (pyarrow types; "null" marks nullable columns; all times are seconds of the video as displayed):

videos.parquet
    video_id str (unique), path str (absolute), dataset str, split str|null,
    duration float64|null, width int32|null, height int32|null (as displayed: rotation applied),
    fps float64|null (average frame rate), rotation int16|null (0/90/180/270), codec str|null,
    has_audio bool|null, probe_error str|null.
    The probe fields are null exactly when the file is missing or unreadable; `probe_error` then says why
    ("missing: <expected path>" for a file that is not there). The extraction stage turns such rows into
    failure records.
segments.parquet
    segment_id str (unique, `segment_id()`: "<video_id>:<start>-<end>@<fps>"), video_id str, start float64,
    end float64|null (null = to the end of the video), fps float64, purpose str ("eval" | "train").
    Frame i of a segment is the frame at start + i/fps.
captions.parquet
    caption_id str (unique: "<video_id>:<kind>:<n>", n = the annotation's own id when it has one, else its
    position in the source),
    video_id str, start float64|null, end float64|null (null only for kind "query": applies to the whole
    video), text str, kind str ("narration" | "step" | "label" | "query"), source str (annotation file and
    key/row the caption came from, for error messages).
boxes.parquet
    video_id str, time float64 (the frame time), x1, y1, x2, y2 float64 (pixels), frame_width int32|null,
    frame_height int32|null (the frame size the box coordinates refer to; null when it depends on a video
    that could not be probed), label str|null, source str|null.

Row numbers in messages are 0-based positions in the table file. `Manifest.read` checks names, types,
nullability and the enumerations above, and names the file and column on any mismatch. `Manifest.write` and
`Manifest.read` also enforce `manifests.integrity` (unique and safe ids, known video ids, absolute paths,
numeric bounds), so a builder never writes and extraction never reads a manifest that breaks them; pass
`check=False` only to inspect such a manifest (`manifests.validate` does, to report every row). `Manifest.read`
also refuses a video path outside the video directory the manifest was built from (`args.video_dir` in
manifest.json, recorded by `manifests.build`; a manifest without it is not judged).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manifests.errors import ManifestError
from manifests.integrity import check_tables, is_under, shown

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
PURPOSES = ("eval", "train")
CAPTION_KINDS = ("narration", "step", "label", "query")


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


VIDEOS_SCHEMA = pa.schema([
    _f("video_id", pa.string()), _f("path", pa.string()), _f("dataset", pa.string()),
    _f("split", pa.string(), True), _f("duration", pa.float64(), True), _f("width", pa.int32(), True),
    _f("height", pa.int32(), True), _f("fps", pa.float64(), True), _f("rotation", pa.int16(), True),
    _f("codec", pa.string(), True), _f("has_audio", pa.bool_(), True), _f("probe_error", pa.string(), True),
])
SEGMENTS_SCHEMA = pa.schema([
    _f("segment_id", pa.string()), _f("video_id", pa.string()), _f("start", pa.float64()),
    _f("end", pa.float64(), True), _f("fps", pa.float64()), _f("purpose", pa.string()),
])
CAPTIONS_SCHEMA = pa.schema([
    _f("caption_id", pa.string()), _f("video_id", pa.string()), _f("start", pa.float64(), True),
    _f("end", pa.float64(), True), _f("text", pa.string()), _f("kind", pa.string()), _f("source", pa.string()),
])
BOXES_SCHEMA = pa.schema([
    _f("video_id", pa.string()), _f("time", pa.float64()), _f("x1", pa.float64()), _f("y1", pa.float64()),
    _f("x2", pa.float64()), _f("y2", pa.float64()), _f("frame_width", pa.int32(), True),
    _f("frame_height", pa.int32(), True), _f("label", pa.string(), True), _f("source", pa.string(), True),
])
TABLE_FILES = {"videos": "videos.parquet", "segments": "segments.parquet", "captions": "captions.parquet",
               "boxes": "boxes.parquet"}
SCHEMAS = {"videos": VIDEOS_SCHEMA, "segments": SEGMENTS_SCHEMA, "captions": CAPTIONS_SCHEMA,
           "boxes": BOXES_SCHEMA}
_ENUMS = {("segments", "purpose"): PURPOSES, ("captions", "kind"): CAPTION_KINDS}


@dataclass(frozen=True)
class VideoRow:
    video_id: str
    path: str
    dataset: str
    split: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int | None = None
    codec: str | None = None
    has_audio: bool | None = None
    probe_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.probe_error is None


@dataclass(frozen=True)
class SegmentRow:
    segment_id: str
    video_id: str
    start: float
    end: float | None
    fps: float
    purpose: str


@dataclass(frozen=True)
class CaptionRow:
    caption_id: str
    video_id: str
    start: float | None
    end: float | None
    text: str
    kind: str
    source: str


@dataclass(frozen=True)
class BoxRow:
    video_id: str
    time: float
    x1: float
    y1: float
    x2: float
    y2: float
    frame_width: int | None
    frame_height: int | None
    label: str | None = None
    source: str | None = None


ROW_TYPES = {"videos": VideoRow, "segments": SegmentRow, "captions": CaptionRow, "boxes": BoxRow}


def segment_id(video_id: str, start: float, end: float | None, fps: float) -> str:
    """Deterministic id of an extraction unit, e.g. "abc:0.000-16.000@5" or "abc:0.000-end@1"."""
    return f"{video_id}:{start:.3f}-{'end' if end is None else f'{end:.3f}'}@{fps:g}"


def rows_to_table(rows: Iterable[Any], table: str) -> pa.Table:
    """Python rows (dataclasses of ROW_TYPES[table]) to a table with the exact schema."""
    schema, names = SCHEMAS[table], [f.name for f in fields(ROW_TYPES[table])]
    rows = list(rows)
    columns = {name: pa.array([getattr(r, name) for r in rows], type=schema.field(name).type) for name in names}
    return conform(pa.table(columns), table, f"<{table} rows>")


def table_to_rows(t: pa.Table, table: str) -> list[Any]:
    cls, columns = ROW_TYPES[table], t.to_pydict()
    names = [f.name for f in fields(cls)]
    return [cls(*values) for values in zip(*(columns[n] for n in names))]


def conform(t: pa.Table, table: str, where: str) -> pa.Table:
    """Check `t` against the schema of `table` and return it with exactly that schema (columns in order,
    lossless casts allowed, e.g. int64 -> int32 when values fit). `where` names the file in errors."""
    schema = SCHEMAS[table]
    extra = [n for n in t.column_names if n not in schema.names]
    if extra:
        raise ManifestError(f"{where}: unexpected column(s) {extra} (schema version {SCHEMA_VERSION})")
    columns = []
    for fld in schema:
        if fld.name not in t.column_names:
            raise ManifestError(f"{where}: missing column {fld.name!r} (expected {fld.type})")
        col = t.column(fld.name)
        if col.type != fld.type:
            col = _cast(col, fld, where)
        if not fld.nullable and col.null_count:
            row = pc.index(pc.is_null(col), True).as_py()
            raise ManifestError(f"{where}: column {fld.name!r} is null in row {row} (not nullable)")
        allowed = _ENUMS.get((table, fld.name))
        if allowed is not None and len(col):
            bad = pc.invert(pc.is_in(col, value_set=pa.array(allowed)))
            if pc.any(bad).as_py():
                row = pc.index(bad, True).as_py()
                raise ManifestError(f"{where}: column {fld.name!r} row {row} is {col[row].as_py()!r}, "
                                    f"expected one of {list(allowed)}")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def _family(t: pa.DataType) -> str:
    for name, test in (("int", pa.types.is_integer), ("float", pa.types.is_floating), ("bool", pa.types.is_boolean),
                       ("str", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
                       ("null", pa.types.is_null)):
        if test(t):
            return name
    return str(t)


def _cast(col: pa.ChunkedArray, fld: pa.Field, where: str) -> pa.ChunkedArray:
    """Casts that cannot change meaning: within a type family (int64 -> int32 when values fit), int -> float,
    and all-null columns. A string of digits is not a number here."""
    src, dst = _family(col.type), _family(fld.type)
    if src == dst or (src, dst) == ("int", "float") or src == "null":
        try:
            return col.cast(fld.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ManifestError(f"{where}: column {fld.name!r} has type {col.type}, expected {fld.type} "
                                f"({exc})") from exc
    raise ManifestError(f"{where}: column {fld.name!r} has type {col.type}, expected {fld.type}")


@dataclass(frozen=True)
class Manifest:
    """An in-memory manifest: the tables (exact schemas, checked on construction) and the build record."""

    videos: pa.Table
    segments: pa.Table
    captions: pa.Table
    boxes: pa.Table | None = None
    builder: str = "unknown"
    args: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        for name in ("videos", "segments", "captions", "boxes"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, conform(value, name, f"<{name} table>"))
        if not self.created:
            object.__setattr__(self, "created", datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def from_rows(cls, *, videos: Iterable[VideoRow], segments: Iterable[SegmentRow],
                  captions: Iterable[CaptionRow], boxes: Iterable[BoxRow] | None = None,
                  builder: str = "unknown", args: Mapping[str, Any] | None = None) -> Manifest:
        return cls(rows_to_table(videos, "videos"), rows_to_table(segments, "segments"),
                   rows_to_table(captions, "captions"), None if boxes is None else rows_to_table(boxes, "boxes"),
                   builder, dict(args or {}))

    def video_rows(self) -> list[VideoRow]:
        return table_to_rows(self.videos, "videos")

    def segment_rows(self) -> list[SegmentRow]:
        return table_to_rows(self.segments, "segments")

    def caption_rows(self) -> list[CaptionRow]:
        return table_to_rows(self.captions, "captions")

    def box_rows(self) -> list[BoxRow]:
        return [] if self.boxes is None else table_to_rows(self.boxes, "boxes")

    def video(self, video_id: str) -> VideoRow:
        """The row of one video; KeyError when it is not in the manifest."""
        mask = pc.equal(self.videos.column("video_id"), video_id)
        rows = table_to_rows(self.videos.filter(mask), "videos")
        if not rows:
            raise KeyError(video_id)
        return rows[0]

    def tables(self) -> dict[str, pa.Table | None]:
        return {name: getattr(self, name) for name in TABLE_FILES}

    def check(self, files: dict[str, str], hint: str) -> None:
        """The integrity rules (`manifests.integrity`); ManifestError names the file, rows and value."""
        check_tables(self.tables(), files, hint)

    @classmethod
    def read(cls, path: str | os.PathLike, *, check: bool = True) -> Manifest:
        """Read and check a manifest directory; ManifestError names the file and the column at fault, or
        the rows that break an integrity rule (unless `check=False`)."""
        root = Path(path)
        meta = _read_meta(root / MANIFEST_FILE)
        tables: dict[str, pa.Table | None] = {}
        for name, filename in TABLE_FILES.items():
            file = root / filename
            if not file.exists():
                if name == "boxes":
                    tables[name] = None
                    continue
                raise ManifestError(f"{file}: missing table file of manifest {root}")
            try:
                t = pq.read_table(file)
            except (pa.ArrowInvalid, OSError) as exc:
                raise ManifestError(f"{file}: not a readable parquet file ({exc})") from exc
            tables[name] = conform(t, name, str(file))
        manifest = cls(tables["videos"], tables["segments"], tables["captions"], tables["boxes"],
                       meta["builder"], meta["args"], meta["created"])
        if check:
            hint = f"run `python -m manifests.validate {root}` for every problem"
            manifest.check({n: str(root / f) for n, f in TABLE_FILES.items()}, hint)
            _check_video_dir(manifest.videos, meta["args"].get("video_dir"), str(root / TABLE_FILES["videos"]),
                             root / MANIFEST_FILE, hint)
        return manifest

    def write(self, path: str | os.PathLike, *, overwrite: bool = False, check: bool = True) -> Path:
        """Write the directory atomically: into a temporary sibling, then renamed into place, so a crash never
        leaves a half manifest at `path`. An existing manifest is replaced only with `overwrite=True`, and a
        non-empty directory that is not a manifest never is. A manifest that breaks an integrity rule is not
        written (ManifestError) unless `check=False`."""
        root = Path(path).absolute()
        if check:
            self.check({n: str(root / f) for n, f in TABLE_FILES.items()}, f"nothing written to {root}")
        if root.exists() and not root.is_dir():
            raise FileExistsError(f"{root}: exists and is not a directory; not replacing it")
        if root.exists() and not overwrite:
            raise FileExistsError(f"{root}: already exists (pass overwrite=True / --overwrite to replace it)")
        if root.exists() and any(root.iterdir()) and not (root / MANIFEST_FILE).exists():
            raise FileExistsError(f"{root}: is a non-empty directory that is not a manifest; not replacing it")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.parent / f".{root.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, filename in TABLE_FILES.items():
                table = getattr(self, name)
                if table is not None:
                    pq.write_table(table, tmp / filename)
            meta = {"schema_version": SCHEMA_VERSION, "builder": self.builder, "args": dict(self.args),
                    "created": self.created}
            (tmp / MANIFEST_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
            _replace_dir(tmp, root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return root


_DOT_COMPONENT = r"(?:^|/)\.\.?(?:/|$)"


def _check_video_dir(videos: pa.Table, video_dir: object, file: str, meta_file: Path, hint: str) -> None:
    """Every video path lies inside the video directory the manifest was built from (`args.video_dir`, recorded
    absolute by `manifests.build`), so a hand edit cannot point extraction at other files. A manifest without
    one (written by code) is not judged, like `manifests.validate` does. Whole-column test first; only paths
    outside the prefix or with a '.'/'..' component are normalised one by one."""
    if not isinstance(video_dir, str) or not os.path.isabs(video_dir) or not videos.num_rows:
        return
    paths = videos.column("path")
    suspect = pc.or_(pc.invert(pc.starts_with(paths, video_dir.rstrip("/") + "/")),
                     pc.match_substring_regex(paths, _DOT_COMPONENT))
    rows = [int(r) for r in suspect.to_numpy(zero_copy_only=False).nonzero()[0]
            if not is_under(paths[int(r)].as_py(), video_dir)]
    if rows:
        listed = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        path, vid = paths[rows[0]].as_py(), videos.column("video_id")[rows[0]].as_py()
        raise ManifestError(f"{file}: row(s) {listed}: path {shown(path)} of video {shown(vid)} is outside the "
                            f"video directory {video_dir} the manifest was built from (args.video_dir in "
                            f"{meta_file}); {hint}")


def _replace_dir(new: Path, target: Path) -> None:
    if not target.exists():
        new.rename(target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old)


def _read_meta(file: Path) -> dict:
    if not file.exists():
        raise ManifestError(f"{file}: missing; {file.parent} is not a manifest directory")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ManifestError(f"{file}: expected a JSON object")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(f"{file}: schema_version {meta.get('schema_version')!r}, this code reads {SCHEMA_VERSION}")
    for key, kind in (("builder", str), ("args", dict), ("created", str)):
        if not isinstance(meta.get(key), kind):
            raise ManifestError(f"{file}: key {key!r} missing or not a {kind.__name__}")
    return meta
