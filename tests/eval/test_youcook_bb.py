"""The youcook-bb task (YouCook2-BoundingBox, CoMMA Table 3): the reader of the published annotation format on a
small file written here in that format, the query plan (object label as query, 1-fps frames from the segment
start, outside/occluded/unannotated frames skipped), pointing scores against hits counted by hand, the command,
the registries and one-line refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.baselines import main as baselines_main
from eval.inference.tasks import RUNNERS, Benchmark, spatial_plan
from eval.predictions import PredictionsMeta, PredictionsWriter, read_predictions
from eval.score import main as score_main
from eval.scorers import SCORERS
from eval.scorers.common import ScoreError
from eval.scorers.youcook_bb import YouCookBBConfig, query_plan, score, sizes_for
from eval.tasks import SPATIAL_TASKS
from manifests.benchmarks.youcook_bb import load_youcook_bb
from manifests.errors import AnnotationError
from trainer.methods import METHODS


def box(x1, y1, x2, y2, outside=0, occluded=0):
    return {"xtl": x1, "ytl": y1, "xbr": x2, "ybr": y2, "outside": outside, "occluded": occluded}


# vidA: no "segment" times (as the skeleton documents): they come from the YouCook2 file.
# vidB: a copy that carries "segment" itself, and a segment whose only object is never visible.
BOXES = {"database": {
    "vidA": {"rwidth": 720, "rheight": 405, "recipe_type": "113", "duration": 200, "segments": {
        "0": {"objects": [
            {"label": "onion", "boxes": [box(10, 20, 110, 120), box(0, 0, 5, 5, outside=1), {},
                                         box(300, 200, 400, 300, occluded=1)]},
            {"label": "knife", "boxes": [box(500, 50, 600, 150), box(500.5, 50, 600, 150), box(0, 0, 719, 404)]},
        ]},
        "3": {"objects": [{"label": "pan", "boxes": [box(1, 1, 2, 2, outside=1), {}]}]},
    }},
    "vidB": {"rwidth": 720, "rheight": 540, "segments": {
        "1": {"segment": [3, 6], "objects": [{"label": "bowl", "boxes": [box(100, 100, 200, 200)] * 2}]},
    }},
}}
YOUCOOK2 = {"database": {"vidA": {"duration": 200.0, "subset": "validation", "recipe_type": "113", "video_url": "u",
                                  "annotations": [{"segment": [12, 16], "id": 0, "sentence": "chop the onion"},
                                                  {"segment": [40, 44], "id": 3, "sentence": "heat the pan"}]}}}


@pytest.fixture
def bench(tmp_path):
    d = tmp_path / "youcook2_bb"
    d.mkdir()
    (d / "yc2_bb_val_annotations.json").write_text(json.dumps(BOXES))
    (d / "youcookii_annotations_trainval.json").write_text(json.dumps(YOUCOOK2))
    return tmp_path


def test_reader_keeps_the_published_layout(bench):
    videos = load_youcook_bb(bench / "youcook2_bb" / "yc2_bb_val_annotations.json")
    a = videos["vidA"]
    assert (a.width, a.height) == (720, 405) and [s.id for s in a.segments] == ["0", "3"]
    onion = a.segments[0].objects[0]
    assert onion.label == "onion" and onion.frames[2] is None
    assert onion.frames[1].outside and onion.frames[3].occluded and onion.frames[0].box == (10, 20, 110, 120)
    assert a.segments[0].span is None and videos["vidB"].segments[0].span == (3.0, 6.0)


def test_query_plan(bench):
    plan, info = query_plan(YouCookBBConfig(str(bench)))
    got = {(q.video_id, q.segment_id): (q.start, q.end, q.query, [s for s, _ in frames]) for q, frames in plan}
    assert got == {("vidA", "0.0"): (12, 15, "onion", [12]),            # outside, unannotated, occluded skipped
                   ("vidA", "0.1"): (12, 14, "knife", [12, 13, 14]),
                   ("vidB", "1.0"): (3, 4, "bowl", [3, 4])}               # the file's own segment times
    assert (info["frames_scored"], info["frames_outside"], info["frames_occluded"],
            info["frames_unannotated"], info["queries_without_frames"]) == (6, 2, 1, 2, 1)
    with_occluded, _ = query_plan(YouCookBBConfig(str(bench), occluded=True))
    assert [s for q, f in with_occluded if q.query == "onion" for s, _ in f] == [12, 15]
    assert sizes_for(YouCookBBConfig(str(bench))).of("vidB") == (720, 540)
    assert sizes_for(YouCookBBConfig(str(bench), frame_size=(64, 48))).of("vidA") == (64, 48)


def write_points(path, plan, offset):
    """A point per second: the box's top-left corner shifted by `offset` pixels (0: on the corner, a hit)."""
    with PredictionsWriter(path, PredictionsMeta("youcook-bb", "test")) as w:
        for q, frames in plan:
            corner = {s: b[:2] for s, b in frames}
            pts = np.array([[corner.get(s, (0, 0))[0] + offset, corner.get(s, (0, 0))[1] + offset]
                            for s in range(q.start, q.end + 1)], np.float32)
            w.add_points(q.video_id, q.segment_id, q.start, q.end, q.query, points=pts)


def hand_hits(plan, offset):
    hits = [b[0] <= b[0] + offset <= b[2] and b[1] <= b[1] + offset <= b[3] for _, frames in plan for _, b in frames]
    return 100.0 * sum(hits) / len(hits)


@pytest.mark.parametrize("offset", [0, 1, 60])
def test_pointing_accuracy_counts_hits_in_the_boxes(bench, tmp_path, offset):
    cfg = YouCookBBConfig(str(bench))
    plan, _ = query_plan(cfg)
    write_points(tmp_path / "p.h5", plan, offset)
    out = score(cfg, read_predictions(tmp_path / "p.h5"))
    assert out["pointing_accuracy"] == pytest.approx(hand_hits(plan, offset))
    assert out["frames"] == 6 and out["queries"] == 3 and set(out["per_class"]) == {"onion", "knife", "bowl"}
    assert out["task"] == "youcook-bb" and out["boxes_file"].endswith("yc2_bb_val_annotations.json")


def test_command_and_registries(bench, tmp_path, capsys):
    assert "youcook-bb" in SCORERS and "youcook-bb" in RUNNERS and "youcook-bb" in SPATIAL_TASKS
    assert "youcook-bb" in METHODS["comma"].tasks and "youcook-bb" in METHODS["stg"].tasks
    plan, _ = query_plan(YouCookBBConfig(str(bench)))
    queries, files = spatial_plan(Benchmark("youcook-bb", bench))
    assert queries == [q for q, _ in plan] and files["boxes_file"].endswith("yc2_bb_val_annotations.json")
    preds = tmp_path / "p.h5"
    write_points(preds, plan, 0)
    assert score_main(["youcook-bb", "--predictions", str(preds), "--benchmark-dir", str(bench)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["pointing_accuracy"] == pytest.approx(hand_hits(plan, 0))
    assert score_main(["youcook-bb", "--predictions", str(preds), "--benchmark-dir", str(bench),
                       "--protocol", "reference"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only --protocol paper" in err[0]


def test_centre_prior_baseline(bench, tmp_path, capsys):
    out = tmp_path / "centre.h5"
    assert baselines_main(["centre", "--task", "youcook-bb", "--benchmark-dir", str(bench), "--out", str(out)]) == 0
    result = score(YouCookBBConfig(str(bench)), read_predictions(out))
    plan, _ = query_plan(YouCookBBConfig(str(bench)))
    size = {"vidA": (720, 405), "vidB": (720, 540)}
    hits = [b[0] <= size[q.video_id][0] / 2 <= b[2] and b[1] <= size[q.video_id][1] / 2 <= b[3]
            for q, frames in plan for _, b in frames]
    assert result["pointing_accuracy"] == pytest.approx(100.0 * sum(hits) / len(hits))


@pytest.mark.parametrize("change,problem", [
    (lambda d: d["database"]["vidA"]["segments"]["0"]["objects"][0]["boxes"][0].update(outside=2),
     r"\['outside'\]: expected 0 or 1"),
    (lambda d: d["database"]["vidA"]["segments"]["0"]["objects"][0]["boxes"][0].pop("xbr"),
     r"missing key 'xbr'"),
    (lambda d: d["database"]["vidA"].pop("rwidth"), r"\['vidA'\]: missing key 'rwidth'"),
])
def test_malformed_files_name_the_file_and_key(bench, change, problem):
    data = json.loads(json.dumps(BOXES))
    change(data)
    path = bench / "youcook2_bb" / "yc2_bb_val_annotations.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=problem) as err:
        query_plan(YouCookBBConfig(str(bench)))
    assert str(path) in str(err.value)


def test_public_test_file_and_unknown_segments_are_refused(bench):
    path = bench / "youcook2_bb" / "yc2_bb_public_test_annotations.json"
    path.write_text(json.dumps({"database": {"vidC": {"rwidth": 720, "rheight": 405, "segments": {"0": {}}}}}))
    with pytest.raises(ScoreError, match="no object box to score"):
        query_plan(YouCookBBConfig(str(bench), boxes=path.name))
    data = json.loads(json.dumps(BOXES))
    data["database"]["vidA"]["segments"]["7"] = data["database"]["vidA"]["segments"].pop("3")
    data["database"]["vidA"]["segments"]["7"]["objects"][0]["boxes"] = [box(1, 1, 9, 9)]
    (bench / "youcook2_bb" / "yc2_bb_val_annotations.json").write_text(json.dumps(data))
    with pytest.raises(ScoreError, match="no YouCook2 segment for 1 annotated segment.*vidA/7"):
        query_plan(YouCookBBConfig(str(bench)))
