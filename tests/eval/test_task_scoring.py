"""The gyt (untrimmed) and mining scorers on tiny hand-written benchmark folders."""
import json

import numpy as np
import pytest

from eval.predictions import BACKGROUND, Predictions, PredictionsMeta, PredictionsWriter, read_predictions
from eval import score
from eval.scorers import gyt, mining, youcook
from eval.scorers.common import MissingPredictionsError, ScoreError
from tests.eval.helpers import mining_file



def gyt_file(path, labels, tubes, n_sec=12):
    pool = ["cut", "mix", BACKGROUND]
    scores = np.zeros((n_sec, 3), np.float32)
    scores[:, 2] = 0.5
    for t, label in labels.items():
        scores[t, pool.index(label)] = 1.0
    with PredictionsWriter(path, PredictionsMeta("gyt", "test")) as w:
        w.add_temporal("v", pool, scores)
        for i, (label, start, end, box) in enumerate(tubes):
            box = np.array(box, np.float32).reshape(-1, 4)
            box = np.tile(box, (end - start + 1, 1)) if len(box) == 1 else box
            centre = np.stack([box[:, [0, 2]].mean(1), box[:, [1, 3]].mean(1)], 1)
            w.add_points("v", i, start, end, label, points=centre, boxes=box)
    return read_predictions(path)


def test_gyt_perfect_tube_and_unknown_seconds(gyt_dir, tmp_path):
    preds = gyt_file(tmp_path / "p.h5", {t: "cut" for t in range(2, 6)}, [("cut", 2, 5, (30, 20, 50, 40))])
    m = gyt.score(gyt.GytConfig(gyt_dir), preds)
    assert m["frames"] == 4 and m["gt_tubes"] == 1 and m["gt_segments_without_boxes"] == 1
    # G = {2, 3, 5, 8}; D (known) = {2, 3, 5}: second 4 is inside "cut" without a box, so it is unknown
    assert m["iou_pointing"] == 75.0 and m["temporal_accuracy"] == 75.0
    assert m["map@0.5"] == m["map_act@0.5"] == 1.0


def test_gyt_false_alarms_outside_segments_lower_iou_pointing(gyt_dir, tmp_path):
    labels = {t: "cut" for t in [0, 1, 2, 3, 4, 5]}
    boxes = [(0, 0, 63, 47)] * 2 + [(30, 20, 50, 40)] * 4  # whole frame at the two false-alarm seconds
    preds = gyt_file(tmp_path / "p.h5", labels, [("cut", 0, 5, boxes)])
    m = gyt.score(gyt.GytConfig(gyt_dir), preds)
    assert m["iou_pointing"] == pytest.approx(100 * 3 / 6)  # correct {2, 3, 5} / (G or D) {0, 1, 2, 3, 5, 8}
    # act: temporal IoU 4/6 x spatial 1 = 0.67 matches at every threshold; voxel: 3 boxes of 21x21 over
    # 3 boxes + 2 frames of 64x48 = 0.18 matches at 0.1 only
    assert [m[f"map_act@{t}"] for t in (0.1, 0.3, 0.5)] == [1.0, 1.0, 1.0]
    assert [m[f"map_voxel@{t}"] for t in (0.1, 0.2, 0.5)] == [1.0, 0.0, 0.0]
    assert m["map_mean"] == m["map_voxel_mean"] == pytest.approx(0.2)


def test_gyt_pointing_uses_the_best_scoring_tube(gyt_dir, tmp_path):
    labels = {t: "cut" for t in range(2, 6)}
    good, bad = ("cut", 2, 5, (30, 20, 50, 40)), ("cut", 2, 3, (0, 0, 5, 5))
    preds = gyt_file(tmp_path / "p.h5", labels, [bad, good])
    preds.temporal["v"].scores[2:4, 0] = 2.0  # the bad short tube now scores higher
    assert gyt.score(gyt.GytConfig(gyt_dir), preds)["iou_pointing"] == 25.0  # only second 5 is hit


def test_gyt_missing_regions_and_bad_tubes(gyt_dir, tmp_path):
    preds = gyt_file(tmp_path / "p.h5", {t: "cut" for t in range(2, 6)}, [])
    with pytest.raises(MissingPredictionsError, match="v@2s:cut"):
        gyt.score(gyt.GytConfig(gyt_dir), preds)
    assert gyt.score(gyt.GytConfig(gyt_dir, missing="miss"), preds)["iou_pointing"] == 0.0
    late = gyt_file(tmp_path / "q.h5", {}, [("cut", 10, 14, (0, 0, 1, 1))])
    with pytest.raises(ScoreError, match="not within the labels and seconds"):
        gyt.score(gyt.GytConfig(gyt_dir), late)


def test_gyt_missing_video(gyt_dir):
    empty = Predictions("mem", PredictionsMeta("gyt", "none"), {}, {}, {})
    with pytest.raises(MissingPredictionsError, match="videos"):
        gyt.score(gyt.GytConfig(gyt_dir), empty)
    m = gyt.score(gyt.GytConfig(gyt_dir, missing="miss"), empty)
    assert m["missing_videos"] == ["v"] and m["frames"] == 4 and m["iou_pointing"] == 0.0 and m["map_mean"] == 0.0


def test_mining_transcript_uses_the_middle_of_each_second(mining_dir):
    segments = mining.load_srt_dir(mining_dir / "miningyoutube" / "annotations")["a"]
    tr = mining.transcript(segments, 10, "a")
    assert tr.labels == (BACKGROUND, "crack_egg", "stir", BACKGROUND)  # "salt" covers no middle of a second
    np.testing.assert_array_equal(tr.bounds, [0, 2, 5, 7, 10])
    assert tr.not_sampled == 1
    with pytest.raises(ScoreError, match="scores cover 6 s"):
        mining.transcript(segments, 6, "a")


def test_mining_alignment_metrics_and_missing_videos(mining_dir, tmp_path):
    pool = [BACKGROUND, "crack_egg", "stir"]
    a = [BACKGROUND] * 3 + ["crack_egg"] * 2 + ["stir"] * 3 + [BACKGROUND] * 2  # one second late, one long
    preds = mining_file(tmp_path / "p.h5", {"a": (a, pool), "b": (["stir"] * 3, pool)})
    m = mining.score(mining.MiningConfig(mining_dir), preds)
    # a: crack_egg GT [2,5) vs [3,5): IoU 2/3, IoD 1; stir GT [5,7) vs [5,8): IoU 2/3, IoD 2/3; b: stir perfect
    assert m["segments"] == 3 and m["iou"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["iod"] == pytest.approx((1 + 2 / 3 + 1) / 3) and m["mof"] == pytest.approx(100 * 11 / 13)
    assert m["labels_with_fallback_length"] == 0 and m["actions_not_sampled"] == 1
    assert m["per_class"]["stir"]["segments"] == 2 and m["per_class"]["crack_egg"]["iod"] == 1.0
    only_b = mining_file(tmp_path / "q.h5", {"b": (["stir"] * 3, pool)})
    with pytest.raises(MissingPredictionsError, match="a"):
        mining.score(mining.MiningConfig(mining_dir), only_b)
    missed = mining.score(mining.MiningConfig(mining_dir, missing="miss"), only_b)
    assert missed["missing_videos"] == ["a"] and missed["segments"] == 3 and missed["iou"] == pytest.approx(1 / 3)
    no_stir = [BACKGROUND] * 3 + ["crack_egg"] * 7
    unknown = mining_file(tmp_path / "r.h5", {"a": (no_stir, [BACKGROUND, "crack_egg"]), "b": (["stir"] * 3, pool)})
    with pytest.raises(ScoreError, match="not columns"):
        mining.score(mining.MiningConfig(mining_dir), unknown)


def test_cli_table_json_out_and_task_mismatch(gyt_dir, tmp_path, capsys):
    gyt_file(tmp_path / "p.h5", {t: "cut" for t in range(2, 6)}, [("cut", 2, 5, (30, 20, 50, 40))])
    args = ["--predictions", str(tmp_path / "p.h5"), "--benchmark-dir", str(gyt_dir)]
    assert score.main(["gyt", *args, "--out", str(tmp_path / "m.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == json.loads((tmp_path / "m.json").read_text())
    assert any(line.startswith("iou_pointing ") for line in lines[:-1])
    assert score.main(["gyt-spatial", *args]) == 2
    assert "written for task 'gyt', not 'gyt-spatial'" in capsys.readouterr().err


def test_youcook_sizes_file_follows_the_annotation_rule_or_the_reference_clamp(tmp_path):
    sizes = {"a": [1280, 720], "b": [640, 480], "WYAFPvlDB_A": [1920, 1080], "c": [480, 360]}
    (tmp_path / "sizes.json").write_text(json.dumps(sizes))
    paper = youcook.sizes_for(youcook.YouCookConfig(tmp_path, sizes="sizes.json"))
    reference = youcook.sizes_for(youcook.YouCookConfig(tmp_path, "reference", sizes="sizes.json"))
    assert [paper.of(v) for v in sizes] == [(640, 360), (640, 480), (1920, 1080), (480, 360)]
    assert [reference.of(v) for v in sizes] == [(640, 360), (640, 360), (640, 360), (480, 360)]
    assert youcook.sizes_for(youcook.YouCookConfig(tmp_path)).of("anything") == (640, 360)


def test_uniform_temporal_accuracy_is_the_mean_over_every_labelling(gyt_dir, tmp_path):
    """The uniform prior's expected temporal accuracy equals the scorer's accuracy averaged over every way of
    labelling the annotated seconds from the pool (a pool without a second's label can never be right)."""
    import itertools

    pool = ["cut", "mix", BACKGROUND]
    (gyt_dir / "groundingyoutube" / "vid2step.json").write_text(json.dumps({"v": pool}))
    cfg = gyt.GytConfig(gyt_dir, missing="miss")
    seconds = gyt.video_truths(cfg)[0]["v"].frame_seconds.tolist()
    accuracies = []
    for labels in itertools.product(pool, repeat=len(seconds)):
        preds = gyt_file(tmp_path / "p.h5", dict(zip(seconds, labels)), [])
        accuracies.append(gyt.score(cfg, preds)["temporal_accuracy"])
    assert gyt.uniform_temporal_accuracy(cfg) == pytest.approx(np.mean(accuracies))
    (gyt_dir / "groundingyoutube" / "vid2step.json").write_text(json.dumps({"v": ["mix", BACKGROUND]}))
    mix = sum(label == "mix" for label in gyt.video_truths(cfg)[0]["v"].frame_labels)
    assert gyt.uniform_temporal_accuracy(cfg) == pytest.approx(100 * mix / 2 / len(seconds))
