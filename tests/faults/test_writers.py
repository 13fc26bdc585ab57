"""Two writers: the lock is an atomic create that exactly one process wins, only its owner removes it, and a
second extraction of a store being written stops with a clear error while the first completes the store."""
from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import StoreLockedError, WriterLock, init_store, layout
from pipeline.store.fs import StoreFS
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import REPO, assert_same_features

SPEC = {"encoder": "clip", "model": "tiny", "weights_sha256": "abc", "grid": [7, 7], "max_words": 20,
        "dims": dict.fromkeys(("global", "grid", "sentence", "words"), 4), "preprocessing": {"size": 224}}
TRIALS = 40


def _contender(root: str, barrier, wins) -> None:
    for trial in range(TRIALS):
        barrier.wait()
        lock = WriterLock(root)
        try:
            lock.__enter__()
            got = True
        except StoreLockedError:
            got = False
        barrier.wait()  # both have tried: the winner releases
        if got:
            wins.put(trial)
            lock.__exit__(None, None, None)
        barrier.wait()


def test_exactly_one_of_two_racing_processes_gets_the_lock(tmp_path):
    root = str(tmp_path / "s.zarr")
    init_store(root, {"clip": SPEC})
    ctx = mp.get_context("fork")
    barrier, wins = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_contender, args=(root, barrier, wins)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    won = sorted(wins.get(timeout=5) for _ in range(TRIALS))
    assert won == list(range(TRIALS))      # one winner per trial, never two
    assert not StoreFS(root).exists(layout.LOCK)


def test_a_process_removes_only_its_own_lock(tmp_path):
    root = str(tmp_path / "s.zarr")
    init_store(root, {"clip": SPEC})
    first = WriterLock(root).__enter__()
    second = WriterLock(root, force=True).__enter__()  # the user cleared the first one's lock
    first.__exit__(None, None, None)
    assert StoreFS(root).read_json(layout.LOCK)["token"] == second.me["token"]
    second.__exit__(None, None, None)
    assert not StoreFS(root).exists(layout.LOCK)


@pytest.mark.slow
def test_a_second_extraction_is_refused_while_the_first_completes(reference, tmp_path, capsys):
    manifest, ref = reference
    store = tmp_path / "store.zarr"
    args = extract_args(manifest, store)
    first = subprocess.Popen([sys.executable, "-m", "pipeline.extract", *args], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (store / layout.LOCK).exists() and time.time() < deadline:
        time.sleep(0.02)
    assert extract_main(args) == 2
    assert "being written by pid" in capsys.readouterr().err
    assert first.wait(300) == 0, first.stderr.read().decode()[-2000:]
    assert_same_features(ref, store)
