"""Pictures: overlays line up with the frames (oracle heatmaps on a synthetic world), timelines, curves."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.predictions import PredictionsMeta, PredictionsWriter, read_predictions
from eval.viz import RED, draw_box, draw_point, main, overlay_frames
from manifests.benchmarks.gyt import load_boxes, load_vid2step
from manifests.ffmpeg import probe
from manifests.schema import Manifest
from manifests.synth import WorldConfig, generate


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """A tiny synthetic world and predictions whose heatmaps peak in the cell holding each box's centre."""
    root = tmp_path_factory.mktemp("viz")
    paths = generate(root / "world", WorldConfig(seed=3, train_videos=1, test_videos=1, seconds=(20, 20))).paths
    manifest = Manifest.read(paths.gyt_manifest)
    boxes = load_boxes(paths.gyt / "box_anno.json")
    pools = load_vid2step(paths.gyt / "vid2step.json")
    (video,) = manifest.video_rows()
    by_second = {b.second: b for b in boxes[video.video_id]}
    first, last = min(by_second), max(by_second)
    heat = np.zeros((last - first + 1, 7, 7), np.float32)
    for s, b in by_second.items():
        x1, y1, x2, y2 = b.box
        heat[s - first, int((y1 + y2) / 2 / video.height * 7), int((x1 + x2) / 2 / video.width * 7)] = 1.0
    labels = pools[video.video_id]
    scores = np.zeros((int(video.duration), len(labels)), np.float32)
    scores[:, labels.index("background")] = 1
    for s, b in by_second.items():
        scores[s] = np.eye(len(labels))[labels.index(b.step)]
    path = root / "oracle.h5"
    with PredictionsWriter(path, PredictionsMeta("gyt", "oracle")) as w:
        w.add_spatial(video.video_id, "all", first, last, "oracle", heat)
        w.add_temporal(video.video_id, labels, scores)
    return path, paths, manifest, video, by_second


def test_argmax_marker_lies_inside_the_ground_truth_box(oracle):
    path, _, manifest, video, by_second = oracle
    frames, seconds, _ = overlay_frames(read_predictions(str(path)), manifest, video.video_id, None, max_frames=100)
    checked = 0
    for img, s in zip(frames, seconds):
        if s not in by_second:
            continue
        x1, y1, x2, y2 = by_second[s].box
        row, col = int((y1 + y2) / 2 / video.height * 7), int((x1 + x2) / 2 / video.width * 7)
        if row in (0, 6) or col in (0, 6):  # a border cell's upsampled plateau peaks at the frame edge
            continue
        ys, xs = np.nonzero(np.all(img == RED, axis=-1))
        assert len(xs) and x1 <= xs.mean() <= x2 and y1 <= ys.mean() <= y2, s
        checked += 1
    assert checked >= len(by_second) // 2


def test_overlay_timeline_and_curves_files(oracle, tmp_path, capsys):
    path, paths, _, video, _ = oracle
    assert main(["overlay", "--predictions", str(path), "--manifest", str(paths.gyt_manifest),
                 "--out", str(tmp_path), "--mp4", "--frames", "4"]) == 0
    assert main(["timeline", "--predictions", str(path), "--manifest", str(paths.gyt_manifest),
                 "--out", str(tmp_path)]) == 0
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "loss": 2.0 / (i + 1), "lr": 1e-3}) + "\n"
                                               for i in range(5)))
    assert main(["curves", "--run", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    written = capsys.readouterr().out.split()
    assert [p.rsplit(".", 1)[-1] for p in written] == ["png", "mp4", "png", "png"]
    for p in written:
        assert (tmp_path / p.rsplit("/", 1)[-1]).stat().st_size > 1000
    mp4 = probe(written[1])
    assert (mp4.width, mp4.height) == (video.width, video.height)
    assert main(["overlay", "--predictions", str(path), "--manifest", str(paths.gyt_manifest), "--out",
                 str(tmp_path), "--video-id", "nope"]) == 2
    assert "no /spatial groups for video 'nope'" in capsys.readouterr().err
    assert main(["timeline", "--predictions", str(path), "--manifest", str(tmp_path / "absent"),
                 "--out", str(tmp_path)]) == 2                        # a clear error, no traceback
    assert "absent" in capsys.readouterr().err


def test_drawing_primitives():
    img = np.zeros((20, 30, 3), np.uint8)
    draw_box(img, (5, 4, 14, 9), width=1)
    assert img[4, 5:15, 1].min() > 0 and img[9, 5:15, 1].min() > 0 and img[6, 10].sum() == 0
    draw_point(img, 20, 10, radius=2)
    assert np.array_equal(img[10, 20], RED)
    draw_box(img, (25, 5, 20, 8))  # inverted: drawn nowhere, no error
