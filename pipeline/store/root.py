"""The store root: creating it, the encoder specs it is bound to, and the writer lock."""
from __future__ import annotations

import json
import os
import socket
import time

import zarr

from pipeline.store import layout
from pipeline.store.layout import StoreFS


class StoreError(RuntimeError):
    """The store cannot be used as asked (see the message)."""


class SpecMismatchError(StoreError):
    """The store was written with other encoder settings than the ones asked for."""


class StoreLockedError(StoreError):
    """Another extraction is writing this store."""


def _normalise(spec: dict) -> dict:
    return json.loads(json.dumps(spec, sort_keys=True))


def spec_differences(have: dict, want: dict, prefix: str = "") -> list[str]:
    """Human-readable differences for the keys `want` names (nested dicts compared key by key)."""
    out = []
    for key, value in want.items():
        name = f"{prefix}{key}"
        if key not in have:
            out.append(f"{name}: store has none, wanted {value!r}")
        elif isinstance(value, dict) and isinstance(have[key], dict):
            out.extend(spec_differences(have[key], value, name + "."))
        elif have[key] != value:
            out.append(f"{name}: store has {have[key]!r}, wanted {value!r}")
    return out


def read_root_attrs(root: str) -> dict | None:
    fs = StoreFS(root)
    if not fs.exists("zarr.json"):
        return None
    attrs = fs.read_json("zarr.json").get("attributes", {}).get(layout.ATTRS_KEY)
    if attrs is None:
        raise StoreError(f"{root}: a zarr group, but not a groundcache store (no '{layout.ATTRS_KEY}' attrs)")
    if attrs.get("schema_version") != layout.SCHEMA_VERSION:
        raise StoreError(f"{root}: store schema version {attrs.get('schema_version')}, this groundcache reads "
                         f"version {layout.SCHEMA_VERSION}")
    return attrs


def check_specs(root: str, have: dict[str, dict], want: dict[str, dict]) -> None:
    """Raise SpecMismatchError naming both sides when `want` (possibly partial specs) disagrees."""
    problems = []
    for enc, spec in want.items():
        if enc not in have:
            problems.append(f"encoder {enc!r}: not in the store (it has {sorted(have)})")
        else:
            problems += [f"{enc}.{d}" for d in spec_differences(have[enc], _normalise(spec))]
    if problems:
        raise SpecMismatchError(f"{root}: encoder settings differ from what was asked for:\n  "
                                + "\n  ".join(problems))


def init_store(root: str, specs: dict[str, dict]) -> dict:
    """Create the store bound to `specs`, or check that an existing one was made with the same ones."""
    specs = {k: _normalise(v) for k, v in specs.items()}
    attrs = read_root_attrs(root)
    if attrs is None:
        attrs = {"schema_version": layout.SCHEMA_VERSION, "encoders": specs, "created": time.time()}
        zarr.open_group(layout.zarr_store(root), mode="a", attributes={layout.ATTRS_KEY: attrs})
        return attrs
    if set(attrs["encoders"]) != set(specs):
        raise SpecMismatchError(f"{root}: the store holds encoders {sorted(attrs['encoders'])}, this run "
                                f"asks for {sorted(specs)}; use another store for a different encoder set")
    check_specs(root, attrs["encoders"], specs)
    return attrs


class WriterLock:
    """One extraction driver per store. A lock left by a killed process on this host is taken over."""

    def __init__(self, root: str, force: bool = False):
        self.fs, self.force = StoreFS(root), force
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}

    def __enter__(self) -> "WriterLock":
        if self.fs.exists(layout.LOCK) and not self.force:
            holder = self.fs.read_json(layout.LOCK)
            if holder.get("host") != self.me["host"] or _alive(holder.get("pid", -1)):
                raise StoreLockedError(
                    f"{self.fs.url}: being written by pid {holder.get('pid')} on {holder.get('host')} since "
                    f"{time.ctime(holder.get('since', 0))}; if that run is dead, pass --force-unlock")
        self.fs.write_json(layout.LOCK, self.me)
        return self

    def __exit__(self, *exc) -> None:
        self.fs.remove(layout.LOCK)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
