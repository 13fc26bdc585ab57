"""Roots that are not (only) a store, a store root that lost or broke its zarr.json, broken markers, a disk that
refuses writes, bad options and Ctrl-C: one error line (exit 2, or 130), nothing of the user's touched."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import StoreError, layout, open_store
from pipeline.upgrade import main as upgrade_main
from pipeline.verify import main as verify_main
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import REPO, assert_same_features


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


def _tree(path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("content", [{"notes.txt": b"mine"}, {"shards/x/data.bin": b"mine", "shards/y": b"mine"}])
def test_a_folder_that_is_not_a_store_is_never_written(reference, tmp_path, capsys, content):
    manifest, _ = reference
    root = tmp_path / "mine"
    for name, data in content.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    before = _tree(root)
    assert extract_main(extract_args(manifest, root)) == 2
    assert str(root) in _error_line(capsys)
    assert _tree(root) == before


def test_a_regular_file_as_store_is_one_error_line(reference, tmp_path, capsys):
    manifest, _ = reference
    path = tmp_path / "store.zarr"
    path.write_text("not a store")
    assert extract_main(extract_args(manifest, path)) == 2
    assert "is a file, not a store directory" in _error_line(capsys)
    with pytest.raises(StoreError, match="is a file"):
        open_store(str(path))


@pytest.mark.slow
def test_a_lost_root_is_not_rebound_to_other_settings(reference, damaged, capsys):
    manifest, store = damaged
    os.remove(store / layout.ROOT_META)
    before = _tree(store)
    assert extract_main(extract_args(manifest, store, "--clip-normalize", "none")) == 2
    assert "--restore-root" in _error_line(capsys)
    assert _tree(store) == before
    assert upgrade_main(["--store", str(store), "--restore-root"]) == 0
    assert extract_main(extract_args(manifest, store, "--clip-normalize", "none")) == 2  # still the old settings
    assert "clip.preprocessing.normalize" in capsys.readouterr().err
    assert_same_features(reference[1], store)


@pytest.mark.slow
def test_a_truncated_root_or_marker_is_one_error_line(reference, damaged, capsys):
    manifest, store = damaged
    marker = next((store / layout.SHARDS_DIR).glob(f"*/{layout.MARKER}"))
    marker.write_bytes(marker.read_bytes()[:40])
    assert verify_main(["--store", str(store), "--manifest", str(manifest), "--deep"]) == 1
    assert marker.parent.name in capsys.readouterr().out
    meta = store / layout.ROOT_META
    meta.write_bytes(meta.read_bytes()[:20])
    with pytest.raises(StoreError, match="zarr.json: not valid JSON.*--restore-root"):
        open_store(str(store))
    assert extract_main(extract_args(manifest, store)) == 2
    assert "not valid JSON" in _error_line(capsys)


@pytest.mark.slow
def test_a_shard_with_other_settings_is_flagged_and_cannot_rebuild_the_root(reference, damaged, capsys):
    """Each shard keeps the spec it was written with (group attributes and marker): `verify --deep` flags one
    that differs from the root's, and a lost root is not rebuilt from shards that disagree."""
    manifest, store = damaged
    shard = sorted((store / layout.SHARDS_DIR).glob(f"*/{layout.MARKER}"))[0].parent
    group_meta, marker = shard / "clip" / "zarr.json", shard / layout.MARKER
    meta = json.loads(group_meta.read_text())
    meta["attributes"]["encoder_spec"]["preprocessing"]["normalize"] = "none"
    group_meta.write_text(json.dumps(meta))
    assert verify_main(["--store", str(store), "--manifest", str(manifest)]) == 0    # fast mode reads no spec
    capsys.readouterr()
    assert verify_main(["--store", str(store), "--manifest", str(manifest), "--deep"]) == 1
    assert f"{shard.name}/clip: encoder spec differs from the store's" in capsys.readouterr().out
    record = json.loads(marker.read_text())
    record["specs"]["clip"]["preprocessing"]["normalize"] = "none"
    marker.write_text(json.dumps(record))
    os.remove(store / layout.ROOT_META)
    assert upgrade_main(["--store", str(store), "--restore-root"]) == 2
    assert "shards disagree on their specs" in _error_line(capsys)
    assert not (store / layout.ROOT_META).exists()


@pytest.mark.slow
def test_a_disk_that_refuses_writes_is_one_error_line_and_leaves_no_temporary_files(reference, tmp_path):
    manifest, _ = reference
    store = tmp_path / "store.zarr"
    limit = "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); from pipeline.extract import main; " \
            "sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", limit, *extract_args(manifest, store)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)  # files over 4 kB fail like a full disk
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in proc.stderr
    assert not [p for p in store.rglob("*.tmp-*")]


BAD_OPTIONS = [("--chunk-frames", "0"), ("--chunk-frames", "-5"), ("--retries", "-1"), ("--workers", "0"),
               ("--videos-per-shard", "0"), ("--s3d-fps", "1e6"), ("--s3d-window", "12")]


@pytest.mark.parametrize("option,value", BAD_OPTIONS)
def test_out_of_range_options_are_refused_before_any_work(reference, tmp_path, capsys, option, value):
    manifest, _ = reference
    store = tmp_path / "store.zarr"
    assert extract_main(extract_args(manifest, store, option, value)) == 2
    assert option in _error_line(capsys)
    assert not store.exists()


@pytest.mark.slow
def test_a_ctrl_c_that_python_swallows_is_raised_again_at_the_next_check():
    from pipeline.extract import Interrupts

    hook = sys.unraisablehook
    with Interrupts() as interrupts:
        try:  # where Python ignores exceptions (a finaliser, a logging handler), a KeyboardInterrupt is lost
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and sys.unraisablehook is hook  # restored


def test_ctrl_c_ends_with_one_line_and_exit_130_and_the_rerun_completes(reference, tmp_path):
    manifest, ref = reference
    store = tmp_path / "store.zarr"
    args = extract_args(manifest, store, "--videos-per-shard", "1")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.extract", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(store.glob(f"{layout.JOURNAL_DIR}/*")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted:" in err and "rerun the same command" in err
    assert not (store / layout.LOCK).exists()  # released: the rerun needs no --force-unlock
    assert extract_main(args) == 0
    assert_same_features(ref, store)
