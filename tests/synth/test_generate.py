"""Whole-world generation: determinism, the command line, refusing to overwrite (the demo's world and its cost:
tests/test_demo.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manifests.schema import Manifest
from manifests.synth import generate
from manifests.synth.__main__ import main
from manifests.validate import validate
from tests.synth.conftest import TINY

MANIFEST_DIRS = ("train/manifest", "test/manifests")  # absolute paths and a creation time inside
REPO = Path(__file__).resolve().parents[2]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(MANIFEST_DIRS)}


def test_same_seed_gives_byte_identical_worlds(tiny, tiny_twin):
    a, b = _files(tiny[0].paths.root), _files(tiny_twin[0].paths.root)
    assert sorted(a) == sorted(b)
    assert sum(name.endswith(".mp4") for name in a) == TINY.train_videos + TINY.test_videos
    assert [name for name in a if a[name] != b[name]] == []


def test_another_process_with_another_hash_seed_writes_the_same_bytes(tiny, tmp_path):
    """The command line in a fresh interpreter (other string hashing) reproduces the session's tiny world."""
    out = tmp_path / "world"
    argv = ["--out", str(out), "--seed", str(TINY.seed), "--train-videos", str(TINY.train_videos),
            "--test-videos", str(TINY.test_videos), "--seconds", "-".join(map(str, TINY.seconds)),
            "--step-seconds", "-".join(map(str, TINY.step_seconds)), "--min-gap", str(TINY.min_gap),
            "--idle-hands", str(TINY.idle_hands), "--no-progress"]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "manifests.synth", *argv], cwd=REPO, env=env, check=True,
                   capture_output=True)
    a, b = _files(tiny[0].paths.root), _files(out)
    assert sorted(a) == sorted(b) and [name for name in a if a[name] != b[name]] == []


def test_manifests_differ_only_in_paths(tiny, tiny_twin):
    a, b = Manifest.read(tiny[0].paths.gyt_manifest), Manifest.read(tiny_twin[0].paths.gyt_manifest)
    assert a.box_rows() == b.box_rows() and a.caption_rows() == b.caption_rows()
    assert a.segment_rows() == b.segment_rows()


def test_another_seed_gives_another_world(tiny, tiny_other_seed):
    a, b = _files(tiny[0].paths.root), _files(tiny_other_seed[0].paths.root)
    assert tiny[1].videos != tiny_other_seed[1].videos
    videos = [name for name in a if name.endswith(".mp4")]
    assert videos and all(a[name] != b.get(name) for name in videos)
    assert a["world.json"] != b["world.json"]


def test_command_line_writes_a_world_and_refuses_to_overwrite_it(tmp_path, capsys):
    out = tmp_path / "world"
    argv = ["--out", str(out), "--seed", "3", "--train-videos", "1", "--test-videos", "1", "--seconds", "8",
            "--step-seconds", "2-3", "--min-gap", "1", "--size", "160x120", "--fps", "5", "--no-progress"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["train_videos"] == 1 and summary["test_videos"] == 1 and summary["frames"] == 2 * 8 * 5
    world = json.loads((out / "world.json").read_text())
    assert world["config"]["width"] == 160 and world["config"]["seconds"] == [8, 8]
    assert all(validate(Path(summary["paths"][k])) == [] for k in ("train_manifest", "gyt_manifest"))
    assert main(argv) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--seed", "4", "--train-window", "4", "--train-fps", "2"]) == 0
    assert json.loads((out / "world.json").read_text())["config"]["seed"] == 4
    segments = Manifest.read(out / "train" / "manifest").segment_rows()
    assert {s.fps for s in segments} == {2.0}


def test_overwrite_never_deletes_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a synthetic world"):
        generate(tmp_path, TINY, overwrite=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_command_line_rejects_bad_options(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "w"), "--size", "321x240"]) == 2
    assert main(["--out", str(tmp_path / "w"), "--seconds", "ten"]) == 2
    assert "error:" in capsys.readouterr().err
