"""`python -m eval.predictions from-boxes` (eval/predictions/from_boxes.py) end to end, as the README's section
"Scoring other methods" shows it: a detector's boxes written as the documented JSON, converted, scored by
`python -m eval.score` in-process, and the metrics checked against what the boxes imply."""
import json
import pickle

import numpy as np
import pytest

from eval.predictions import BACKGROUND, read_predictions
from eval.predictions.__main__ import main as predictions_main
from eval.predictions.from_boxes import NO_BOX, NO_POINT
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import write_gyt_files

SIZE = (64, 48)
CUT, MIX = [30, 20, 50, 40], [5, 5, 20, 30]   # the ground-truth boxes (every second of a step)
ELSEWHERE = [0, 0, 3, 3]                       # a box far from both
STEPS = [("cut", 2, 5, CUT), ("mix", 8, 10, MIX)]


@pytest.fixture()
def bench(tmp_path):
    return write_gyt_files(tmp_path / "benchmarks", {"v": {"size": SIZE, "steps": STEPS}})


def convert(tmp_path, task, bench, detections, *extra, name="p"):
    dets = tmp_path / f"{name}.json"
    dets.write_text(json.dumps(detections))
    out = tmp_path / f"{name}.h5"
    assert predictions_main(["from-boxes", "--task", task, "--boxes", str(dets), "--benchmark-dir", str(bench),
                             "--out", str(out), *map(str, extra)]) == 0
    return out


def frame_dets(boxes_by_label, score=0.9, seconds=None):
    """GLIP/RegionCLIP-style detections: per step second, the given box for its label."""
    return [{"second": s, "query": label, "box": boxes_by_label.get(label, box), "score": score}
            for label, a, b, box in STEPS for s in (seconds or range(a, b + 1))]


def box_iou(a, b):
    """Pixel-set IoU of two inclusive integer boxes (the scorers' convention), by counting pixels."""
    grid = np.zeros((2, SIZE[1], SIZE[0]), bool)
    for k, (x1, y1, x2, y2) in enumerate((a, b)):
        grid[k, y1:y2 + 1, x1:x2 + 1] = True
    return (grid[0] & grid[1]).sum() / (grid[0] | grid[1]).sum()


# ------------------------------------------------------------------------------------------------ gyt-spatial
def test_gyt_spatial_boxes_on_the_truth_score_100_and_elsewhere_0(bench, tmp_path, capsys):
    distractor = [{"second": s, "query": "cut", "box": ELSEWHERE, "score": 0.1} for s in range(2, 6)]
    out = convert(tmp_path, "gyt-spatial", bench, {"method": "GLIP", "videos": {"v": {
        "detections": distractor + frame_dets({})}}})
    m = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", bench)
    assert m["frames"] == 7 and m["pointing_accuracy"] == 100.0 and m["mean_iou"] == 1.0
    assert m["method"] == "GLIP"
    out = convert(tmp_path, "gyt-spatial", bench, {"videos": {"v": {"detections": frame_dets(
        {"cut": ELSEWHERE, "mix": ELSEWHERE})}}}, name="q")
    m = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", bench)
    assert m["pointing_accuracy"] == 0.0 and m["mean_iou"] == 0.0 and m["method"] == "detector"


def test_gyt_spatial_hand_case_undetected_seconds_and_rescaled_boxes(bench, tmp_path, capsys):
    """cut: right at 2, 3, elsewhere at 4, nothing at 5; mix: a box shifted 5 px right at 8 (its centre still
    inside), right at 9, 10. Every box is given on a frame twice the size ("size": [128, 96]) and rescaled."""
    shifted = [10, 5, 25, 30]
    boxes = {("cut", 2): CUT, ("cut", 3): CUT, ("cut", 4): ELSEWHERE, ("mix", 8): shifted, ("mix", 9): MIX,
             ("mix", 10): MIX}
    dets = [{"second": s, "query": q, "box": [2 * c for c in box], "score": 1} for (q, s), box in boxes.items()]
    dets.append({"second": 3, "query": "cut onion", "score": 1, "box": CUT})  # answers no query: a warning
    out = convert(tmp_path, "gyt-spatial", bench, {"videos": {"v": {"size": [128, 96], "detections": dets}}})
    assert "1 detection(s) answer no query" in capsys.readouterr().err
    cut = read_predictions(out).points["v"]["0"]
    np.testing.assert_allclose(cut.boxes[:3], [CUT, CUT, ELSEWHERE])
    np.testing.assert_array_equal(cut.boxes[3], NO_BOX)
    np.testing.assert_array_equal(cut.points[3], NO_POINT)
    m = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", bench)
    truth = {("cut", s): CUT for s in range(2, 6)} | {("mix", s): MIX for s in range(8, 11)}
    hits = [key in boxes and gt[0] <= (boxes[key][0] + boxes[key][2]) / 2 <= gt[2]
            and gt[1] <= (boxes[key][1] + boxes[key][3]) / 2 <= gt[3] for key, gt in truth.items()]
    ious = [box_iou(boxes[key], gt) if key in boxes else 0.0 for key, gt in truth.items()]
    assert sum(hits) == 5 and 0 < box_iou(shifted, MIX) < 1
    assert m["pointing_accuracy"] == pytest.approx(100 * 5 / 7)
    assert m["mean_iou"] == pytest.approx(np.mean(ious))


def test_tubes_count_as_detections_at_each_of_their_seconds(bench, tmp_path, capsys):
    """TubeDETR/STCAT style: one tube per query; a better-scoring tube wins where tubes overlap."""
    tubes = [{"query": "cut", "start": 1, "end": 5, "score": 0.8, "boxes": [CUT] * 5},
             {"query": "cut", "start": 4, "end": 5, "score": 0.2, "boxes": [ELSEWHERE] * 2},
             {"query": "mix", "start": 8, "end": 10, "score": 0.5, "boxes": [MIX, ELSEWHERE, MIX]}]
    out = convert(tmp_path, "gyt-spatial", bench, {"method": "TubeDETR", "videos": {"v": {"tubes": tubes}}})
    m = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", bench)
    assert m["pointing_accuracy"] == pytest.approx(100 * 6 / 7)  # every frame but mix at second 9


# ------------------------------------------------------------------------------------------------------ gyt
def test_gyt_labels_from_the_best_detection_and_boxes_as_tubes(bench, tmp_path, capsys):
    """All pool labels as candidates at every second: the best-scoring one is the label, none is background."""
    dets = frame_dets({}) + [{"second": s, "query": "mix", "box": ELSEWHERE, "score": 0.3} for s in range(0, 6)]
    out = convert(tmp_path, "gyt", bench, {"method": "RegionCLIP", "videos": {"v": {"detections": dets}}})
    preds = read_predictions(out)
    temporal = preds.temporal["v"]
    assert temporal.labels == ("cut", "mix", BACKGROUND)
    names = np.array(temporal.labels)[temporal.predicted()]
    want = ["mix"] * 2 + ["cut"] * 4 + [BACKGROUND] * 2 + ["mix"] * 3
    assert names.tolist() == want
    assert [(p.query, p.start, p.end) for _, p in sorted(preds.points["v"].items())] == \
           [("mix", 0, 1), ("cut", 2, 5), ("mix", 8, 10)]
    m = run_score(capsys, "gyt", "--predictions", out, "--benchmark-dir", bench)
    # G = D' = the 7 annotated seconds; the two false-alarm seconds 0, 1 join the union
    assert m["temporal_accuracy"] == 100.0 and m["iou_pointing"] == pytest.approx(100 * 7 / 9)
    # the false mix tube (score 0.3) ranks below both true tubes, each of voxel IoU 1
    assert m["map@0.5"] == 1.0 and m["detections"] == 3
    elsewhere = convert(tmp_path, "gyt", bench, {"videos": {"v": {"detections": frame_dets(
        {"cut": ELSEWHERE, "mix": ELSEWHERE})}}}, name="q")
    m = run_score(capsys, "gyt", "--predictions", elsewhere, "--benchmark-dir", bench)
    assert m["temporal_accuracy"] == 100.0 and m["iou_pointing"] == 0.0 and m["map@0.1"] == 0.0


def test_gyt_hand_case_and_min_score(bench, tmp_path, capsys):
    """cut right at 2..5; mix boxes elsewhere at 8..10: IoU+Pointing 4/7, AP 1 for cut and 0 for mix. With
    --min-score 0.6 the mix detections (0.5) are dropped: seconds 8..10 are background."""
    dets = frame_dets({"mix": ELSEWHERE}, score=0.5) + [{"second": s, "query": "cut", "box": CUT, "score": 0.7}
                                                       for s in range(2, 6)]
    out = convert(tmp_path, "gyt", bench, {"videos": {"v": {"detections": dets}}})
    m = run_score(capsys, "gyt", "--predictions", out, "--benchmark-dir", bench)
    assert m["iou_pointing"] == pytest.approx(100 * 4 / 7) and m["temporal_accuracy"] == 100.0
    assert m["map@0.5"] == pytest.approx(0.5) and m["per_class"]["mix"]["ap@0.1"] == 0.0
    out = convert(tmp_path, "gyt", bench, {"videos": {"v": {"detections": dets}}}, "--min-score", 0.6, name="q")
    m = run_score(capsys, "gyt", "--predictions", out, "--benchmark-dir", bench)
    assert m["temporal_accuracy"] == pytest.approx(100 * 4 / 7) and m["detections"] == 1
    assert read_predictions(out).meta.metadata["min_score"] == 0.6


def test_gyt_coverage_layout_spans_every_second_per_label(bench, tmp_path):
    dets = [{"second": s, "query": "mix", "box": MIX, "score": 0.4} for s in (3, 9)]
    out = convert(tmp_path, "gyt", bench, {"videos": {"v": {"detections": dets}}}, "--layout", "coverage")
    preds = read_predictions(out)
    groups = {p.query: p for p in preds.points["v"].values()}
    assert {(q, p.start, p.end) for q, p in groups.items()} == {("cut", 0, 10), ("mix", 0, 10)}
    found = [s for s in range(11) if (groups["mix"].boxes[s] != NO_BOX).any()]
    assert found == [3, 9] and (groups["cut"].boxes == NO_BOX).all()
    assert preds.meta.metadata["layout"] == "coverage" and preds.meta.metadata["groups"] == 2


# -------------------------------------------------------------------------------------------------- youcook
def test_youcook_frame_ids_are_one_past_the_second(tmp_path, capsys):
    """Boxes move 30 px a frame: detections at second k - 1 for frame id k score 100 %, at second k (the frame
    id taken for a second) 0 %."""
    root = tmp_path / "benchmarks" / "youcook2_interactions"
    root.mkdir(parents=True)
    frames = {k: (30.0 * k, 10.0, 30.0 * k + 20, 40.0) for k in range(3, 7)}
    (root / "final_dataset_segments.pkl").write_bytes(pickle.dumps({("yv", 3, 6)}))
    (root / "final_dataset_annotations.pkl").write_bytes(pickle.dumps({"yv": frames}))
    db = {"yv": {"duration": 20.0, "subset": "validation", "recipe_type": "x", "video_url": "",
                 "annotations": [{"segment": [3, 6], "id": 0, "sentence": "add salt"}]}}
    (root / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    bench = tmp_path / "benchmarks"
    right = [{"second": k - 1, "query": "add salt", "box": list(b), "score": 1} for k, b in frames.items()]
    out = convert(tmp_path, "youcook", bench, {"videos": {"yv": {"detections": right}}})
    m = run_score(capsys, "youcook", "--predictions", out, "--benchmark-dir", bench)
    assert m["frames"] == 4 and m["pointing_accuracy"] == 100.0
    late = [{**d, "second": d["second"] + 1} for d in right]
    out = convert(tmp_path, "youcook", bench, {"videos": {"yv": {"detections": late}}}, name="q")
    m = run_score(capsys, "youcook", "--predictions", out, "--benchmark-dir", bench)
    assert m["pointing_accuracy"] == 0.0


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("detections, message", [
    ({"videos": {"v": {"detections": [{"second": 2, "query": "cut", "box": [5, 5, 1, 9], "score": 1}]}}},
     "needs x1 <= x2"),
    ({"videos": {"v": {"detections": [{"second": 2, "query": "cut", "box": [1, 1, 2, 2], "score": None}]}}},
     "score must be a finite number"),
    ({"videos": {"v": {"detections": [{"second": -1, "query": "cut", "box": [1, 1, 2, 2], "score": 1}]}}},
     "second must be a whole number"),
    ({"videos": {"v": {"detection": []}}}, "unknown key(s) ['detection']"),
    ({"videos": {"v": {"tubes": [{"query": "cut", "start": 2, "end": 4, "score": 1, "boxes": [CUT]}]}}},
     "one box per second 2..4"),
    ({"videos": {"v": {"detections": [{"second": 2, "query": "cut onion", "box": CUT, "score": 1}]}}},
     "not action labels of the video's pool"),
    ({}, "missing key(s) ['videos']"),
])
def test_bad_detections_exit_2_naming_the_file(bench, tmp_path, capsys, detections, message):
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps(detections))
    code = predictions_main(["from-boxes", "--task", "gyt", "--boxes", str(dets), "--benchmark-dir", str(bench),
                             "--out", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {dets}") and message in err[0]
    assert not (tmp_path / "p.h5").exists()


def test_not_json_and_wrong_layout(bench, tmp_path, capsys):
    dets = tmp_path / "d.json"
    dets.write_text("{not json")
    args = ["from-boxes", "--boxes", str(dets), "--benchmark-dir", str(bench), "--out", str(tmp_path / "p.h5")]
    assert predictions_main([*args, "--task", "gyt"]) == 2
    assert "not JSON" in capsys.readouterr().err
    dets.write_text(json.dumps({"videos": {}}))
    assert predictions_main([*args, "--task", "gyt-spatial", "--layout", "coverage"]) == 2
    assert "'coverage' is a gyt layout" in capsys.readouterr().err
