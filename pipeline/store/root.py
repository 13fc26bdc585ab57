"""The store root: creating it, the encoder specs it is bound to, and the writer lock.

A root is bound to one set of encoder specs when it is created and never rebound: a root whose `zarr.json`
is missing or unreadable while store content is there is an error (restore it from a backup, or rebuild it
from the shards' own specs with `python -m pipeline.upgrade`), and a directory that holds anything but a
store is never written to.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid

import zarr

from pipeline.store import layout
from pipeline.store.errors import SpecMismatchError, StoreError, StoreLockedError
from pipeline.store.fs import StoreFS, zarr_store
from pipeline.store.index import EMPTY_CURRENT


def normalise(spec: dict) -> dict:
    return json.loads(json.dumps(spec, sort_keys=True))


def spec_differences(have: dict, want: dict, prefix: str = "", whole: bool = False) -> list[str]:
    """Human-readable differences for the keys `want` names (nested dicts compared key by key); `whole`: `want`
    is a complete spec, so a key only the store has (an int8 grid_dtype against the float16 default) differs too."""
    out = [f"{prefix}{key}: store has {have[key]!r}, this run has none" for key in have if whole and key not in want]
    for key, value in want.items():
        name = f"{prefix}{key}"
        if key not in have:
            out.append(f"{name}: store has none, wanted {value!r}")
        elif isinstance(value, dict) and isinstance(have[key], dict):
            out.extend(spec_differences(have[key], value, name + ".", whole))
        elif have[key] != value:
            out.append(f"{name}: store has {have[key]!r}, wanted {value!r}")
    return out


def read_root_attrs(root: str | StoreFS) -> dict | None:
    """The root's groundcache attrs; None where there is no store at all (an empty or absent root)."""
    fs = root if isinstance(root, StoreFS) else StoreFS(root)
    kind = fs.root_kind()
    if kind == "file":
        raise StoreError(f"{fs.url}: is a file, not a store directory")
    if not fs.exists(layout.ROOT_META):
        content = set(fs.list_names("")) if kind == "directory" else set()
        if content & (layout.ROOT_ENTRIES - {layout.LOCK}):
            raise StoreError(f"{fs.url}: store content ({', '.join(sorted(content & layout.ROOT_ENTRIES))}) but no "
                             f"{layout.ROOT_META}: the root's encoder specs are lost; restore {layout.ROOT_META} or "
                             f"rebuild it from the shards with `python -m pipeline.upgrade --store {fs.url} --restore-root`")
        return None
    try:
        meta = fs.read_json(layout.ROOT_META)
    except StoreError as exc:
        raise StoreError(f"{exc}; restore it, or rebuild it from the shards with `python -m pipeline.upgrade "
                         f"--store {fs.url} --restore-root`") from None
    attrs = meta.get("attributes", {}).get(layout.ATTRS_KEY) if isinstance(meta, dict) else None
    if not isinstance(attrs, dict) or not isinstance(attrs.get("encoders"), dict):
        raise StoreError(f"{fs.url}: a zarr group, but not a groundcache store (no '{layout.ATTRS_KEY}' attrs)")
    if attrs.get("schema_version") != layout.SCHEMA_VERSION:
        raise StoreError(f"{fs.url}: store schema version {attrs.get('schema_version')}, this groundcache reads "
                         f"version {layout.SCHEMA_VERSION}: upgrade its index with "
                         f"`python -m pipeline.upgrade --store {fs.url}`")
    return attrs


def check_specs(root: str, have: dict[str, dict], want: dict[str, dict], whole: bool = False) -> None:
    """Raise SpecMismatchError naming both sides when `want` (partial specs, or `whole` ones) disagrees."""
    problems = []
    for enc, spec in want.items():
        if enc not in have:
            problems.append(f"encoder {enc!r}: not in the store (it has {sorted(have)})")
        else:
            problems += [f"{enc}.{d}" for d in spec_differences(have[enc], normalise(spec), whole=whole)]
    if problems:
        raise SpecMismatchError(f"{root}: encoder settings differ from what was asked for:\n  "
                                + "\n  ".join(problems))


def claim_root(root: str) -> dict | None:
    """Check that `root` may be written (a store, or empty or absent) before anything is written there;
    returns the store's attrs, None for a root that will be created."""
    fs = StoreFS(root)
    attrs = read_root_attrs(fs)
    if attrs is None:
        foreign = [n for n in fs.list_names("") if n not in layout.ROOT_ENTRIES]
        if foreign:
            raise StoreError(f"{root}: holds other files ({', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}), "
                             f"not a groundcache store; give an empty or new directory")
    return attrs


def init_store(root: str, specs: dict[str, dict]) -> dict:
    """Create the store bound to `specs` in an empty or absent root, or check an existing store's specs."""
    fs = StoreFS(root)
    specs = {k: normalise(v) for k, v in specs.items()}
    attrs = claim_root(root)
    if attrs is None:
        attrs = {"schema_version": layout.SCHEMA_VERSION, "encoders": specs, "created": time.time()}
        if fs.local:
            os.makedirs(fs.path(), exist_ok=True)
        write_root(root, attrs)
        fs.write_json(layout.CURRENT, EMPTY_CURRENT)  # from now on a missing CURRENT.json is damage
        return attrs
    if set(attrs["encoders"]) != set(specs):
        raise SpecMismatchError(f"{root}: the store holds encoders {sorted(attrs['encoders'])}, this run "
                                f"asks for {sorted(specs)}; use another store for a different encoder set")
    check_specs(root, attrs["encoders"], specs, whole=True)
    return attrs


def write_root(root: str, attrs: dict) -> None:
    try:
        zarr.open_group(zarr_store(root), mode="a").attrs[layout.ATTRS_KEY] = attrs
    except OSError as exc:
        raise StoreError(f"{root}: cannot write the store root: {exc.strerror or exc}") from exc


class WriterLock:
    """One extraction driver per store: an atomic create of _LOCK.json holding an owner token.

    Only the owner removes it. A lock whose owner is dead (a process on this host that no longer exists) is
    reported with how to clear it (`--force-unlock`), never taken over in silence."""

    def __init__(self, root: str, force: bool = False):
        self.fs, self.force = StoreFS(root), force
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": uuid.uuid4().hex}

    def __enter__(self) -> "WriterLock":
        if self.force:
            self.fs.remove(layout.LOCK)
        if not self.fs.create(layout.LOCK, json.dumps(self.me).encode()):
            raise StoreLockedError(self._held_message())
        if self.fs.read_json(layout.LOCK).get("token") != self.me["token"]:  # stores without atomic create
            raise StoreLockedError(self._held_message())
        return self

    def _held_message(self) -> str:
        try:
            holder = self.fs.read_json(layout.LOCK)
        except (FileNotFoundError, StoreError):
            holder = {}
        who = f"pid {holder.get('pid')} on {holder.get('host')} since {time.ctime(holder.get('since', 0))}"
        if holder.get("host") == self.me["host"] and not _alive(holder.get("pid", -1)):
            return (f"{self.fs.url}: locked by {who}, which is no longer running (a killed run); if no other run "
                    f"writes this store, clear the lock with --force-unlock")
        return f"{self.fs.url}: being written by {who}; wait for it, or if that run is dead, pass --force-unlock"

    def __exit__(self, *exc) -> None:
        try:
            holder = self.fs.read_json(layout.LOCK)
        except (FileNotFoundError, StoreError):
            return
        if holder.get("token") == self.me["token"]:
            self.fs.remove(layout.LOCK)


def _alive(pid: int) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
