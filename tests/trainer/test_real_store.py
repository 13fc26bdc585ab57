"""Smoke test on a store made by the real pipeline: generated videos and narrations -> manifest (caption
windows at 5 fps) -> extraction with the tiny random CLIP -> a few training steps of the tiny preset."""
from __future__ import annotations

import json

import pytest

from manifests.build import main as build_manifest
from pipeline.extract import main as extract_main
from pipeline.store import open_store
from tests.media import colour_video
from trainer.rundir import read_metrics
from trainer.train import main as train_main


@pytest.mark.slow
def test_tiny_training_on_an_extracted_store(tmp_path, capsys):
    videos, captions = tmp_path / "videos", tmp_path / "captions"
    videos.mkdir(), captions.mkdir()
    for k in range(2):
        colour_video(videos / f"v{k}.mp4", seconds=12, width=64, height=48)
        rows = [(1.0 + 3 * i, 2.5 + 3 * i, f"step {i} of video {k} add the eggs") for i in range(4)]
        (captions / f"v{k}.csv").write_text("start,end,text\n" + "".join(f"{s},{e},{t}\n" for s, e, t in rows))
    manifest, store = tmp_path / "manifest", tmp_path / "store.zarr"
    assert build_manifest(["howto100m", str(captions), "--video-dir", str(videos), "--out", str(manifest),
                           "--no-progress"]) == 0
    assert extract_main(["--manifest", str(manifest), "--store", str(store), "--encoders", "clip",
                         "--preset", "tiny"]) == 0
    assert open_store(str(store)).encoders["clip"]["model"] == "clip-tiny"
    capsys.readouterr()
    run = tmp_path / "run"
    assert train_main(["--store", str(store), "--out", str(run), "--preset", "tiny", "runtime.progress=false",
                       "optim.max_steps=3", "data.batch_size=4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["narrations"] == 8 and summary["videos"] == 2 and summary["steps"] == 3
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3]
