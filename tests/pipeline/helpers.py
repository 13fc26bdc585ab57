"""Shared by the extraction tests: narrated generated videos, a run killed midway, store equality."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from manifests.build import main as build_manifest
from pipeline.store import open_store
from tests.media import colour_video

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--encoders", "clip,s3d", "--preset", "tiny", "--s3d-window", "16"]


def write_csv(path: Path, rows: list[tuple[float, float, str]]) -> None:
    path.write_text("start,end,text\n" + "".join(f"{s},{e},{t}\n" for s, e, t in rows))


def narrated_world(root: Path, videos: int = 10) -> Path:
    """`videos` short videos (3-5 s) with two narrations each; a manifest of 2-s windows at 5 fps."""
    vids, caps = root / "videos", root / "captions"
    vids.mkdir(parents=True), caps.mkdir()
    for i in range(videos):
        colour_video(vids / f"v{i:02d}.mp4", seconds=3 + i % 3, width=64, height=48)
        write_csv(caps / f"v{i:02d}.csv", [(0.0, 2.0, f"step {i}"), (1.0, 3.0, "mix it")])
    manifest = root / "manifest"
    assert build_manifest(["howto100m", str(caps), "--video-dir", str(vids), "--window", "2", "--fps", "5",
                           "--out", str(manifest), "--no-progress"]) == 0
    return manifest


def kill_midway(args: list[str], committed: Callable[[], int], at_least: int, env: dict | None = None) -> None:
    """Run `python -m pipeline.extract ARGS` and SIGKILL it once `committed()` shards reach `at_least`."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.extract", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while committed() < at_least and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < committed(), "the run was killed before it committed anything"


def all_features(root) -> dict:
    store = open_store(str(root))
    out = {}
    for vid in store.video_ids():
        for enc in sorted(store.encoders):
            out[vid, enc] = store.frames(vid, enc)
            out[vid, enc, "text"] = dict(store.captions(vid, enc))
    return out


def assert_same_features(a, b) -> None:
    want, got = all_features(a), all_features(b)
    assert want.keys() == got.keys() and want
    for key in want:
        for field in want[key]:
            np.testing.assert_array_equal(got[key][field], want[key][field], err_msg=f"{key} {field}")
