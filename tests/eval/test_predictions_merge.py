"""`python -m eval.predictions merge` (eval/predictions/merge.py): one method's gyt temporal predictions with
another's spatial maps, as the paper's MIL-NCE(temp.) + RegionCLIP(spa.); scored end to end."""
import hashlib
import json

import numpy as np
import pytest

from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter, read_predictions
from eval.predictions.__main__ import main as predictions_main
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import write_gyt_files

SIZE = (64, 48)
CUT, MIX, ELSEWHERE = [30, 20, 50, 40], [5, 5, 20, 30], [0, 0, 3, 3]
POOL = ["cut", "mix", BACKGROUND]
N_SEC = 11


@pytest.fixture()
def bench(tmp_path):
    steps = [("cut", 2, 5, CUT), ("mix", 8, 10, MIX)]
    return write_gyt_files(tmp_path / "benchmarks", {"v": {"size": SIZE, "steps": steps}})


def temporal_file(path, labels, task="gyt", protocol="paper"):
    """A's file: per second the given label scores 1, background 0.5, others 0; plus a tube of its own."""
    scores = np.zeros((N_SEC, 3), np.float32)
    scores[:, 2] = 0.5
    for s, label in enumerate(labels):
        scores[s, POOL.index(label)] = 1.0
    with PredictionsWriter(path, PredictionsMeta(task, "MIL-NCE", protocol, {"store": "s3d.zarr"})) as w:
        w.add_temporal("v", POOL, scores)
        if task == "gyt":
            w.add_points("v", "0", 2, 3, "cut", points=np.zeros((2, 2), np.float32))  # dropped by the merge
    return path


LABELS = [BACKGROUND] * 2 + ["cut"] * 4 + [BACKGROUND] * 2 + ["mix"] * 3


def runs_of(labels):
    """Maximal runs of an action label, by hand."""
    out = []
    for s, label in enumerate(labels):
        if label == BACKGROUND:
            continue
        if out and out[-1][0] == label and out[-1][2] == s - 1:
            out[-1][2] = s
        else:
            out.append([label, s, s])
    return [tuple(r) for r in out]


def heatmap_file(path, groups, metadata=None, task="gyt"):
    """B with /spatial groups [(id, label, start, end, map)] (the same map every second)."""
    scores = np.zeros((N_SEC, 3), np.float32)
    scores[:, 2] = 1.0
    with PredictionsWriter(path, PredictionsMeta(task, "CLIP", "paper", metadata or {})) as w:
        if task == "gyt":
            w.add_temporal("v", POOL, scores)
        for sid, label, a, b, heat in groups:
            w.add_spatial("v", sid, a, b, label, np.repeat(heat[None], b - a + 1, axis=0))
    return path


def merge(tmp_path, a, b, name="c.h5", code=0):
    out = tmp_path / name
    assert predictions_main(["merge", "--temporal", str(a), "--spatial", str(b), "--out", str(out)]) == code
    return out


def test_milnce_temporal_with_regionclip_boxes(bench, tmp_path, capsys):
    """B from RegionCLIP-style boxes for every label at every second (from-boxes --layout coverage): the merged
    tubes are A's runs with B's boxes; boxes on the truth give 100 % IoU+Pointing and AP 1."""
    a = temporal_file(tmp_path / "a.h5", LABELS)
    dets = [{"second": s, "query": label, "box": box, "score": 0.5} for s in range(N_SEC)
            for label, box in (("cut", CUT), ("mix", MIX))]
    (tmp_path / "regionclip.json").write_text(json.dumps({"method": "RegionCLIP", "videos": {"v": {
        "detections": dets}}}))
    b = tmp_path / "b.h5"
    assert predictions_main(["from-boxes", "--task", "gyt", "--layout", "coverage", "--boxes",
                             str(tmp_path / "regionclip.json"), "--benchmark-dir", str(bench), "--out", str(b)]) == 0
    c = merge(tmp_path, a, b)
    capsys.readouterr()
    merged, temporal = read_predictions(c), read_predictions(a)
    np.testing.assert_array_equal(merged.temporal["v"].scores, temporal.temporal["v"].scores)
    tubes = sorted(merged.points["v"].items(), key=lambda kv: int(kv[0]))
    assert [(p.query, p.start, p.end) for _, p in tubes] == runs_of(LABELS)
    for _, p in tubes:
        np.testing.assert_array_equal(p.boxes, [CUT if p.query == "cut" else MIX] * (p.end - p.start + 1))
    assert merged.meta.method == "MIL-NCE(temp.)+RegionCLIP(spa.)" and not merged.spatial
    info = merged.meta.metadata["merge"]
    assert info["temporal"]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert info["spatial"]["file"] == str(b) and info["spatial"]["method"] == "RegionCLIP"
    assert info["temporal"]["metadata"] == {"store": "s3d.zarr"} and info["temporal_file_tubes_dropped"] == 1
    m = run_score(capsys, "gyt", "--predictions", c, "--benchmark-dir", bench)
    assert m["iou_pointing"] == 100.0 and m["temporal_accuracy"] == 100.0 and m["map@0.5"] == 1.0


def test_heatmaps_from_several_groups_and_the_mask_rule_carried_over(bench, tmp_path, capsys, cell_points):
    """Each label's seconds covered by two groups together; the first covering group (id order) wins."""
    cut, mix = cell_points.heatmap_inside(CUT, SIZE), cell_points.heatmap_inside(MIX, SIZE)
    away = cell_points.heatmap_inside(ELSEWHERE, SIZE)
    groups = [("0", "cut", 0, 3, cut), ("1", "cut", 3, 10, away), ("2", "cut", 4, 10, cut),
              ("3", "mix", 0, 8, mix), ("10", "mix", 5, 10, mix)]
    rule = {"mask_rule": {"name": "cosine-0.5", "threshold": 0.5, "normalise": "none"}}
    b = heatmap_file(tmp_path / "b.h5", groups, rule)
    c = merge(tmp_path, temporal_file(tmp_path / "a.h5", LABELS), b)
    merged = read_predictions(c)
    cut_tube = merged.spatial["v"]["0"]
    # seconds 2, 3 from group 0; 4, 5 from group 1 (the first covering), which points elsewhere
    np.testing.assert_array_equal(cut_tube.heatmaps, [cut, cut, away, away])
    assert merged.meta.metadata["mask_rule"]["name"] == "cosine-0.5"
    m = run_score(capsys, "gyt", "--predictions", c, "--benchmark-dir", bench)
    assert m["iou_pointing"] == pytest.approx(100 * 5 / 7) and m["mask_rule"] == "cosine-0.5"


def test_uncovered_tubes_are_listed_and_nothing_is_written(bench, tmp_path, capsys):
    cut = np.ones((7, 7), np.float32)
    b = heatmap_file(tmp_path / "b.h5", [("0", "cut", 0, 10, cut), ("1", "mix", 0, 8, cut), ("2", "beat", 0, 10, cut)])
    merge(tmp_path, temporal_file(tmp_path / "a.h5", LABELS), b, code=2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {b} does not cover 1 tube(s)")
    assert "v tube 1 'mix' seconds 8..10 (not covered: 9..10)" in err[0]
    assert not (tmp_path / "c.h5").exists()


def test_a_tube_mixing_heatmaps_and_points_is_refused(bench, tmp_path, capsys):
    b = heatmap_file(tmp_path / "b.h5", [("0", "cut", 0, 3, np.ones((7, 7), np.float32))])
    with PredictionsWriter(tmp_path / "b2.h5", PredictionsMeta("gyt", "mixed", "paper", {})) as w:
        w.add_temporal("v", POOL, read_predictions(b).temporal["v"].scores)
        w.add_spatial("v", "0", 0, 3, "cut", np.ones((4, 7, 7), np.float32))
        w.add_points("v", "1", 4, 10, "cut", points=np.zeros((7, 2), np.float32))
        w.add_points("v", "2", 0, 10, "mix", points=np.zeros((11, 2), np.float32))
    merge(tmp_path, temporal_file(tmp_path / "a.h5", LABELS), tmp_path / "b2.h5", code=2)
    assert "tube v/0 ('cut', seconds 2..5) draws on groups ['0', '1'] that mix" in capsys.readouterr().err


@pytest.mark.parametrize("a_task, b_task, message", [
    ("mining", "gyt", "task 'mining': merge combines gyt temporal predictions"),
    ("gyt", "youcook", "task 'youcook' holds no GroundingYouTube spatial maps"),
])
def test_other_tasks_are_refused(tmp_path, capsys, a_task, b_task, message):
    a = temporal_file(tmp_path / "a.h5", LABELS, task=a_task)
    b = heatmap_file(tmp_path / "b.h5", [("0", "cut", 0, 10, np.ones((7, 7), np.float32))], task=b_task)
    merge(tmp_path, a, b, code=2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
