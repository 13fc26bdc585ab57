"""The writer lock on an object store (moto's S3 server on 127.0.0.1, through s3fs): `_LOCK.json` is created with a
conditional put (If-None-Match: *), so a second writer, in another process, is refused while the first holds it;
the holder's release removes it; a process never removes a lock whose owner token is not its own; and where a file
system has no conditional put, the check-then-write fallback keeps the same rules one writer at a time.

moto honours If-None-Match on PutObject (checked below), but checks it and then stores the object in two steps
(moto/s3/responses.py), so a race between two processes would test moto, not us: the race itself is tested on
local disk (tests/faults/test_writers.py), where the create is O_EXCL."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import fsspec
import pytest

from pipeline.store import StoreLockedError, WriterLock, init_store, layout
from pipeline.store.fs import StoreFS
from tests.pipeline.helpers import REPO

pytest.importorskip("moto")
from pipeline.bench_requests import BUCKET, LocalS3  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = {"encoder": "clip", "model": "tiny", "weights_sha256": "abc", "grid": [7, 7], "max_words": 20,
        "dims": dict.fromkeys(("global", "grid", "sentence", "words"), 4), "preprocessing": {"size": 224}}

# Another process: take the lock (exit 3 when refused, printing why), optionally release it; or, holding nothing,
# run the release of a WriterLock that never got the lock (a run finishing after its lock was cleared).
CONTENDER = """
import json, sys
from pipeline.store import StoreLockedError, WriterLock
root, force, action = sys.argv[1], sys.argv[2] == "force", sys.argv[3]
lock = WriterLock(root, force=force)
if action == "release-only":
    lock.__exit__(None, None, None)
    sys.exit(0)
try:
    lock.__enter__()
except StoreLockedError as exc:
    print(exc)
    sys.exit(3)
print(json.dumps({"token": lock.me["token"], "pid": lock.me["pid"]}))
if action == "take-and-release":
    lock.__exit__(None, None, None)
"""


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as server:
        yield server


@pytest.fixture()
def root(s3) -> str:
    url = s3.url(f"lock-{uuid.uuid4().hex[:8]}.zarr")
    init_store(url, {"clip": SPEC})
    return url


def _contender(s3, root: str, action: str, force: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CONTENDER, root, "force" if force else "no", action], cwd=REPO,
                          env={**os.environ, **s3.env}, capture_output=True, text=True, timeout=120)


def _holder(root: str) -> str | None:
    fs = StoreFS(root)
    return fs.read_json(layout.LOCK)["token"] if fs.exists(layout.LOCK) else None


def test_the_server_refuses_a_second_conditional_put(s3):
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    key = f"{BUCKET}/probe-{uuid.uuid4().hex[:8]}"
    fs.pipe_file(key, b"first", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(key, b"second", mode="create")
    assert fs.cat_file(key) == b"first"


def test_a_second_process_is_refused_and_only_the_holder_releases(s3, root):
    first = WriterLock(root).__enter__()
    assert _holder(root) == first.me["token"]
    refused = _contender(s3, root, "take")
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert f"being written by pid {os.getpid()}" in refused.stdout and root in refused.stdout
    assert _holder(root) == first.me["token"]  # the refused create did not overwrite the holder's lock

    other = _contender(s3, root, "release-only")  # a process that does not hold the lock releases "its" lock
    assert other.returncode == 0, other.stderr[-2000:]
    assert _holder(root) == first.me["token"]

    first.__exit__(None, None, None)
    assert _holder(root) is None
    taken = _contender(s3, root, "take-and-release")
    assert taken.returncode == 0 and _holder(root) is None, taken.stderr[-2000:]


def test_a_lock_cleared_and_retaken_is_not_removed_by_its_first_owner(s3, root):
    first = WriterLock(root).__enter__()
    second = _contender(s3, root, "take", force=True)  # the user cleared the lock (--force-unlock) elsewhere
    assert second.returncode == 0, second.stderr[-2000:]
    token = json.loads(second.stdout.strip().splitlines()[-1])["token"]
    assert _holder(root) == token != first.me["token"]
    first.__exit__(None, None, None)  # the first run ends: the second's lock stays
    assert _holder(root) == token
    with pytest.raises(StoreLockedError, match=f"locked by pid {_pid_of(second)} .*no longer running"):
        WriterLock(root).__enter__()  # its owner, the second process, has exited without releasing it


def _pid_of(proc: subprocess.CompletedProcess) -> int:
    return json.loads(proc.stdout.strip().splitlines()[-1])["pid"]


def test_without_conditional_puts_the_fallback_keeps_the_rules(s3, root, monkeypatch):
    fs = StoreFS(root).fs  # fsspec's cached instance: every StoreFS of this root uses it
    real, refused_modes = fs.pipe_file, []

    def pipe_file(path, value, **kwargs):  # a file system that knows no conditional writes
        if "mode" in kwargs:
            refused_modes.append(kwargs["mode"])
            raise TypeError("pipe_file() got an unexpected keyword argument 'mode'")
        return real(path, value, **kwargs)

    monkeypatch.setattr(fs, "pipe_file", pipe_file)
    first = WriterLock(root).__enter__()
    assert refused_modes == ["create"] and _holder(root) == first.me["token"]  # taken by check-then-write
    with pytest.raises(StoreLockedError, match="being written by pid"):
        WriterLock(root).__enter__()
    assert _holder(root) == first.me["token"]
    WriterLock(root).__exit__(None, None, None)  # not the owner: nothing removed
    assert _holder(root) == first.me["token"]
    first.__exit__(None, None, None)
    assert _holder(root) is None and refused_modes == ["create", "create"]
