"""End to end on the real GroundingYouTube (untrimmed) and MiningYouTube annotations: oracles score perfectly,
heatmap predictions flow through the same path, the uniform alignment baseline is well defined."""
import math

import numpy as np
import pytest

from eval import score
from eval.scorers import mining
from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter
from manifests.benchmarks.gyt import load_boxes, load_segments, load_vid2step
from manifests.benchmarks.mining import load_srt_dir
from tests.eval.helpers import run_baseline, run_score


@pytest.fixture(scope="module")
def gyt_truth(benchmarks_dir):
    """Per video: (segments with their matching boxed seconds, per-second oracle labels, query pool)."""
    root = benchmarks_dir / "groundingyoutube"
    boxes, pools = load_boxes(root / "box_anno.json"), load_vid2step(root / "vid2step.json")
    out = {}
    for vid, segments in load_segments(root / "ground_seg_3to20.json").items():
        by_second = {b.second: b for b in boxes[vid]}
        located, frames = [], {}
        for seg in segments:
            seconds = [t for t in range(seg.start, seg.end + 1) if t in by_second and by_second[t].step == seg.sentence]
            frames.update({t: by_second[t] for t in seconds})
            if any(by_second[t].box[2] >= by_second[t].box[0] for t in seconds):
                located.append((seg, seconds))
        n_sec = max(max(s.end for s in segments), max(frames, default=0)) + 2
        labels = np.full(n_sec, BACKGROUND, dtype=object)
        for seg, _ in located:
            labels[seg.start:seg.end + 1] = seg.sentence
        for t, b in frames.items():
            if labels[t] != BACKGROUND:
                labels[t] = b.step
        out[vid] = (located, frames, labels, pools[vid])
    return out


def write_temporal(writer, vid, labels, pool):
    scores = np.zeros((len(labels), len(pool)), np.float32)
    scores[np.arange(len(labels)), [pool.index(label) for label in labels]] = 1.0
    writer.add_temporal(vid, pool, scores)


def test_gyt_oracle_tubes_give_map_one(gyt_truth, benchmarks_dir, tmp_path, capsys):
    path = tmp_path / "oracle.h5"
    with PredictionsWriter(path, PredictionsMeta("gyt", "oracle")) as writer:
        for vid, (located, frames, labels, pool) in gyt_truth.items():
            write_temporal(writer, vid, labels, pool)
            for i, (seg, seconds) in enumerate(located):
                boxes = np.array([frames[t].box if t in seconds else (0, 0, 0, 0)
                                  for t in range(seg.start, seg.end + 1)], np.float32)
                centres = np.stack([boxes[:, [0, 2]].mean(1), boxes[:, [1, 3]].mean(1)], 1)
                writer.add_points(vid, i, seg.start, seg.end, seg.sentence, points=centres, boxes=boxes)
    m = run_score(capsys, "gyt", "--predictions", path, "--benchmark-dir", benchmarks_dir)
    frames = sum(len(f) for _, f, _, _ in gyt_truth.values())
    hittable = sum(b.box[2] >= b.box[0] for _, f, _, _ in gyt_truth.values() for b in f.values())
    assert m["frames"] == frames and m["gt_tubes"] == sum(len(v[0]) for v in gyt_truth.values())
    assert m["iou_pointing"] == pytest.approx(100 * hittable / frames) and m["temporal_accuracy"] < 100
    for th in (0.1, 0.2, 0.3, 0.4, 0.5):
        assert m[f"map@{th}"] == m[f"map_act@{th}"] == 1.0
    assert m["map_mean"] == 1.0


def test_gyt_heatmap_runs_and_missing_videos(gyt_truth, benchmarks_dir, tmp_path, capsys, cell_points):
    """Inference-style file: one /spatial group per run of a predicted label; one video left out."""
    path, dropped, size = tmp_path / "runs.h5", sorted(gyt_truth)[0], (640, 480)
    hittable = 0
    with PredictionsWriter(path, PredictionsMeta("gyt", "oracle-heatmaps")) as writer:
        for vid, (_, frames, labels, pool) in sorted(gyt_truth.items())[1:]:
            write_temporal(writer, vid, labels, pool)
            cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
            for i, (a, b) in enumerate(zip([0, *cut.tolist()], [*cut.tolist(), len(labels)])):
                if labels[a] == BACKGROUND:
                    continue
                maps = np.zeros((b - a, 7, 7), np.float32)
                for t in range(a, b):
                    heatmap = cell_points.heatmap_inside(frames[t].box, size) if t in frames else None
                    maps[t - a] = heatmap if heatmap is not None else np.eye(7, dtype=np.float32)
                    hittable += heatmap is not None and labels[t] == frames[t].step
                writer.add_spatial(vid, i, a, b - 1, labels[a], maps)
    args = ["gyt", "--predictions", path, "--benchmark-dir", benchmarks_dir, "--frame-size", "640x480"]
    assert score.main([str(a) for a in args]) == 2 and dropped in capsys.readouterr().err
    m = run_score(capsys, *args, "--missing", "miss")
    frames = sum(len(f) for _, f, _, _ in gyt_truth.values())
    assert m["missing_videos"] == [dropped] and m["frames"] == frames
    assert m["iou_pointing"] == pytest.approx(100 * hittable / frames)
    assert 0 < m["map@0.1"] < 1 and m["map_voxel@0.5"] <= m["map_voxel@0.1"]


def midpoint_labels(segments, n_sec):
    labels = [BACKGROUND] * n_sec
    for s in range(n_sec):
        for seg in segments:
            if seg.start <= s + 0.5 < seg.end:
                labels[s] = seg.label
    return labels


def test_mining_oracle_and_uniform_baseline(benchmarks_dir, tmp_path, capsys):
    videos = load_srt_dir(benchmarks_dir / "miningyoutube" / "annotations")
    path, action_runs = tmp_path / "oracle.h5", 0
    with PredictionsWriter(path, PredictionsMeta("mining", "oracle")) as writer:
        for vid, segments in videos.items():
            labels = midpoint_labels(segments, max(math.ceil(s.end) for s in segments))
            pool = sorted(set(labels) | {BACKGROUND})
            scores = np.zeros((len(labels), len(pool)), np.float32)
            # confident enough to outweigh any length prior (a Poisson of mean 5 s dislikes 100-s backgrounds)
            scores[np.arange(len(labels)), [pool.index(label) for label in labels]] = 1000.0
            writer.add_temporal(vid, pool, scores)
            action_runs += sum(1 for i, label in enumerate(labels)
                               if label != BACKGROUND and (i == 0 or labels[i - 1] != label))
    run_baseline("uniform", "--benchmark", "mining", "--benchmark-dir", benchmarks_dir, "--out", tmp_path / "u.h5")
    oracle = run_score(capsys, "mining", "--predictions", path, "--benchmark-dir", benchmarks_dir)
    assert (oracle["iou"], oracle["iod"], oracle["mof"]) == (1.0, 1.0, 100.0)
    assert oracle["segments"] == action_runs and oracle["videos"] == 250
    for protocol in ("paper", "reference"):
        uniform = run_score(capsys, "mining", "--predictions", tmp_path / "u.h5", "--benchmark-dir", benchmarks_dir,
                            "--protocol", protocol)
        assert uniform["seconds"] == oracle["seconds"]
        if protocol == "paper":
            assert uniform["segments"] == action_runs
        else:  # frame-level ground truth at 30 fps also keeps actions shorter than a second
            frame_runs = sum(name != BACKGROUND for vid, segments in videos.items() for name in mining.frame_transcript(
                segments, 30 * max(math.ceil(s.end) for s in segments), 30, vid).labels)
            assert uniform["segments"] == frame_runs and uniform["frames"] == 30 * oracle["seconds"]
        assert 0 < uniform["iou"] < uniform["iod"] < 1 and 0 < uniform["mof"] < 100


def test_uniform_temporal_prior_on_the_real_files(gyt_truth, benchmarks_dir):
    """The uniform prior's expected temporal accuracy: 1 / pool size on every annotated second of a segment."""
    from eval.scorers.gyt import GytConfig, uniform_temporal_accuracy

    chances = [(frames[t].step in pool) / len(pool) for _, frames, _, pool in gyt_truth.values() for t in frames]
    assert uniform_temporal_accuracy(GytConfig(benchmarks_dir)) == pytest.approx(100 * np.mean(chances))
