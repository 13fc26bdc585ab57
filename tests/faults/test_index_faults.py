"""A deleted or truncated index is an error that names the rebuild command, never an empty or partial store;
a consolidation killed at the end of an extraction loses nothing."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import StoreCorruptError, layout, open_store
from pipeline.store.fs import StoreFS
from pipeline.store.index import read_current
from pipeline.upgrade import main as upgrade_main
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import REPO, assert_same_features

pytestmark = pytest.mark.slow


def _run_dir(store):
    return store / layout.INDEX_DIR / read_current(StoreFS(str(store)))["runs"][0]["name"]


DAMAGE = {
    "deleted CURRENT.json": lambda store: (store / layout.CURRENT).unlink(),
    "truncated CURRENT.json": lambda store: (store / layout.CURRENT).write_bytes(
        (store / layout.CURRENT).read_bytes()[:10]),
    "deleted run": lambda store: shutil.rmtree(_run_dir(store)),
    "truncated run column": lambda store: (_run_dir(store) / "videos.id.str.bin").write_bytes(b"v0"),
    "deleted index folder": lambda store: shutil.rmtree(store / layout.INDEX_DIR),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_is_an_error_naming_the_rebuild(reference, damaged, damage, capsys):
    manifest, store = damaged
    DAMAGE[damage](store)
    with pytest.raises(StoreCorruptError, match="python -m pipeline.upgrade --store"):
        open_store(str(store))
    assert extract_main(extract_args(manifest, store)) == 2
    assert "pipeline.upgrade" in capsys.readouterr().err
    assert upgrade_main(["--store", str(store)]) == 0
    assert_same_features(reference[1], store)


KILL_AT_CURRENT = """
import os, signal, sys
from pipeline import extract
from pipeline.store import fs
real = fs.StoreFS.write_bytes
seen = []
def write_bytes(self, rel, data, durable=True):  # the 1st CURRENT.json is the new store's, the 2nd the final fold
    if rel.endswith("CURRENT.json"):
        seen.append(rel)
    if len(seen) == 2 and rel.endswith("CURRENT.json") and sys.argv[1] == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, rel, data, durable)
    if len(seen) == 2 and rel.endswith("CURRENT.json") and sys.argv[1] == "after":
        os.kill(os.getpid(), signal.SIGKILL)
fs.StoreFS.write_bytes = write_bytes
extract.main(sys.argv[2:])
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_extraction_killed_while_consolidating_loses_nothing(reference, tmp_path, when, capsys):
    manifest, ref = reference
    store = tmp_path / "store.zarr"
    args = extract_args(manifest, store)
    proc = subprocess.run([sys.executable, "-c", KILL_AT_CURRENT, when, *args], cwd=REPO, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert_same_features(ref, store)  # every committed shard is served, from the journal or the new run
    assert extract_main([*args, "--force-unlock"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert_same_features(ref, store)
