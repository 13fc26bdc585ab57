"""gyt: several region-mask rules in one scoring pass (CVPR Table 12) and the widespread / saturated split of the
ground-truth tubes by area (CVPR Table 15), against separate runs, slow references and hand cases."""
import json

import numpy as np
import pytest

from eval import run as eval_run
from eval import score
from eval.metrics.heatmaps import MaskRule, heatmap_stats, upsample
from eval.metrics.video_ap import (
    Detection, GtTube, grouped_video_map, tube_iou_voxel, video_map,
)
from eval.predictions import BACKGROUND, Predictions, PredictionsMeta, PredictionsWriter, read_predictions
from eval.scorers import gyt
from eval.scorers.common import ScoreError
from eval.scorers.gyt_tubes import heatmap_sweep
from tests.eval.helpers import run_baseline, run_score, score_fails

SIZE = (64, 48)
POOL = ["cut", "mix", BACKGROUND]


def _bench(root, boxes, segments, sizes):
    gdir = root / "groundingyoutube"
    gdir.mkdir(parents=True, exist_ok=True)
    (gdir / "box_anno.json").write_text(json.dumps(boxes))
    (gdir / "ground_seg_3to20.json").write_text(json.dumps(segments))
    (gdir / "id2wh_new.json").write_text(json.dumps(sizes))
    (gdir / "vid2step.json").write_text(json.dumps({v: POOL for v in sizes}))
    return root


@pytest.fixture()
def two_videos(tmp_path):
    """Video a (64x48): "cut" 2..5 with a small box, "mix" 8..9 with a frame-filling box; video b (a larger
    frame, 200x150): "cut" 1..3 with a large box, "mix" 5..6 small."""
    boxes = {"a": [{"second": s, "box": [30, 20, 50, 40], "step_name": "cut"} for s in (2, 3, 5)]
            + [{"second": s, "box": [0, 0, 63, 47], "step_name": "mix"} for s in (8, 9)],
             "b": [{"second": s, "box": [10, 10, 150, 120], "step_name": "cut"} for s in (1, 2, 3)]
            + [{"second": s, "box": [5, 5, 20, 25], "step_name": "mix"} for s in (5, 6)]}
    segments = {"a": [{"segment": [2, 5], "id": 0, "sentence": "cut"}, {"segment": [8, 9], "id": 1, "sentence": "mix"}],
                "b": [{"segment": [1, 3], "id": 0, "sentence": "cut"}, {"segment": [5, 6], "id": 1, "sentence": "mix"}]}
    return _bench(tmp_path / "bench", boxes, segments, {"a": list(SIZE), "b": [200, 150]})


GT_SPANS = {"a": [("cut", 2, 5), ("mix", 8, 9)], "b": [("cut", 1, 3), ("mix", 5, 6)]}


def _random_file(path, rng, n_sec=12, tubes_per_video=4):
    """Random /temporal scores and heatmap tubes (several per class, overlapping): the first ones on the
    ground-truth spans with a random block of strong cells over noise, the others anywhere, noise only."""
    with PredictionsWriter(path, PredictionsMeta("gyt", "random")) as w:
        for vid in ("a", "b"):
            w.add_temporal(vid, POOL, rng.random((n_sec, 3)).astype(np.float32))
            for i in range(tubes_per_video):
                if i < len(GT_SPANS[vid]):
                    label, start, end = GT_SPANS[vid][i]
                else:
                    label, (start, end) = POOL[i % 2], sorted(int(v) for v in rng.integers(0, n_sec, 2))
                maps = 0.05 * rng.random((end - start + 1, 7, 7)).astype(np.float32) ** 4
                if i < len(GT_SPANS[vid]):
                    y, x = rng.integers(0, 4, 2)
                    maps[:, y:y + int(rng.integers(2, 5)), x:x + int(rng.integers(2, 5))] += rng.random() + 0.2
                w.add_spatial(vid, i, start, end, label, maps)
    return read_predictions(path)


MAP_KEYS = [f"map{v}@{t}" for v in ("", "_voxel", "_act") for t in gyt.THRESHOLDS] + \
    ["map_mean", "map_voxel_mean", "map_act_mean"]


def _row_from_single(single: dict, variant: str = "voxel") -> dict:
    """What a `thresholds` row must hold, read from a separate run with that one rule."""
    row = {k: single[k] for k in [f"map@{t}" for t in gyt.THRESHOLDS] + ["map_mean"]}
    for v in ("voxel", "act"):
        row[v] = {f"map@{t}": single[f"map_{v}@{t}"] for t in gyt.THRESHOLDS} | {"map_mean": single[f"map_{v}_mean"]}
    for g in single["area_groups"][:2]:
        row[g["group"]] = {k: g[k] for k in [f"map@{t}" for t in gyt.THRESHOLDS] + ["map_mean"]}
        row[f"{g['group']}_map@0.4"] = g["map@0.4"]
    return row


@pytest.mark.parametrize("variant", ["voxel", "act"])
def test_each_row_of_a_sweep_is_the_run_with_that_rule_alone(two_videos, tmp_path, variant):
    preds = _random_file(tmp_path / "p.h5", np.random.default_rng(3))
    thresholds, scales = (0.001, 0.05, 0.3), ("max", "none")
    area = 3000
    swept = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=thresholds,
                                    mask_normalise=scales, tube_iou=variant, area_split=area), preds)
    rows = swept.pop("thresholds")
    assert [(r["mask_normalise"], r["mask_threshold"]) for r in rows] == [(s, t) for s in scales for t in thresholds]
    singles = []
    for row in rows:
        single = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=row["mask_threshold"],
                                         mask_normalise=row["mask_normalise"], tube_iou=variant, area_split=area),
                           preds)
        singles.append(single)
        assert "thresholds" not in single
        expected = _row_from_single(single, variant)
        assert {k: row[k] for k in expected} == expected
        assert set(row) == set(expected) | {"mask_normalise", "mask_threshold"}
    assert swept == singles[0]  # the top-level keys are those of the first rule
    # the rules matter here (else this test could not tell the rows apart)
    assert len({json.dumps(r["voxel"], sort_keys=True) for r in rows}) > 2


def test_a_single_threshold_and_no_split_keep_the_old_keys(two_videos, tmp_path):
    preds = _random_file(tmp_path / "p.h5", np.random.default_rng(5))
    plain = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=0.05, area_split=0), preds)
    listed = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=(0.05,), mask_normalise=("max",),
                                     area_split=0), preds)
    assert plain == listed
    assert not {"thresholds", "area_groups", "area_split", "area_measure"} & set(plain)
    assert plain["mask_threshold"] == 0.05 and plain["mask_normalise"] is True
    split = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=0.05), preds)
    assert {k: split[k] for k in plain} == plain and split["area_split"] == gyt.AREA_SPLIT


def test_sweep_rows_on_a_hand_made_tube(tmp_path):
    """One tube, one video: the heatmap is 1 on the centre cell and 0.02 elsewhere, the box the bounding box of
    the upsampled map's pixels >= 0.5. Masks, voxel IoU and AP computed here from the upsampled map; the rows
    must follow: at 0.5 the mask nearly fills the box, at 0.01 it is the whole frame."""
    heat = np.full((7, 7), 0.02, np.float32)
    heat[3, 3] = 1.0
    up = upsample(heat[None], SIZE)[0]
    ys, xs = np.nonzero(up >= 0.5)
    x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    boxes = {"v": [{"second": s, "box": [x1, y1, x2, y2], "step_name": "cut"} for s in (1, 2)]}
    bench = _bench(tmp_path / "bench", boxes, {"v": [{"segment": [1, 2], "id": 0, "sentence": "cut"}]},
                   {"v": list(SIZE)})
    scores = np.zeros((4, 3), np.float32)
    scores[:, 2] = 0.5
    scores[1:3, 0] = 1.0
    with PredictionsWriter(tmp_path / "p.h5", PredictionsMeta("gyt", "hand")) as w:
        w.add_temporal("v", POOL, scores)
        w.add_spatial("v", 0, 1, 2, "cut", np.stack([heat, heat]))
    preds = read_predictions(tmp_path / "p.h5")
    box = np.zeros(SIZE[::-1], bool)
    box[y1:y2 + 1, x1:x2 + 1] = True
    m = gyt.score(gyt.GytConfig(str(bench), mask_threshold=(0.01, 0.5), mask_normalise=("max", "none"),
                                area_split=0), preds)
    ious = []
    for row in m["thresholds"]:
        cut = row["mask_threshold"] * (up.max() if row["mask_normalise"] == "max" else 1.0)
        mask = up >= np.float32(cut)
        iou = (mask & box).sum() / (mask | box).sum()  # the same mask both seconds
        ious.append(iou)
        for t in gyt.THRESHOLDS:
            assert row[f"map@{t}"] == (1.0 if iou >= t else 0.0), (row, iou)
    assert ious[0] < 0.1 < 0.5 < ious[1]  # both outcomes occur
    assert m["thresholds"][0]["map@0.5"] == 0.0 and m["thresholds"][1]["map@0.5"] == 1.0


def test_heatmap_sweep_is_heatmap_stats_per_rule():
    rng = np.random.default_rng(0)
    maps = (rng.random((9, 7, 7)) ** 3).astype(np.float32)
    maps[4] = maps[2]  # identical maps (heatmap_stats upsamples them once)
    maps[5] = -maps[5]  # no positive maximum: empty normalised mask
    for size in [(64, 48), (33, 17)]:
        x = np.sort(rng.integers(-3, size[0] + 3, (9, 2)), axis=1)
        y = np.sort(rng.integers(-3, size[1] + 3, (9, 2)), axis=1)
        ranges = np.stack([np.clip(x[:, 0], 0, None), np.minimum(x[:, 1], size[0] - 1),
                           np.clip(y[:, 0], 0, None), np.minimum(y[:, 1], size[1] - 1)], 1)
        ranges[1] = (0, -1, 0, -1)  # no box
        rules = [MaskRule(0.01, True), MaskRule(0.3, True), MaskRule(0.05, False), MaskRule(1.0, True)]
        points, areas, inters = heatmap_sweep(maps, size, ranges, rules)
        for k, rule in enumerate(rules):
            one = heatmap_stats(maps, size, ranges, rule)
            np.testing.assert_array_equal(points, one.points)
            np.testing.assert_array_equal(areas[k], one.mask_area)
            np.testing.assert_array_equal(inters[k], one.inter)
        assert len({tuple(a) for a in areas}) == len(rules)


# ---- grouped video AP -----------------------------------------------------------------------------------------
def _tube(vid, label, start, end, area):
    seconds = np.arange(start, end + 1)
    return GtTube(vid, label, start, end, seconds, np.full(len(seconds), area, np.int64))


def _det(gt_or_span, label, score, inter_frac, vid=None):
    """A detection over a tube's span whose mask covers `inter_frac` of each box and nothing else."""
    if isinstance(gt_or_span, GtTube):
        g = gt_or_span
        n = g.end - g.start + 1
        inter = np.zeros(n, np.int64)
        inter[g.seconds - g.start] = (g.box_area * inter_frac).astype(np.int64)
        return Detection(g.video_id, label, score, g.start, g.end, inter.copy(), inter)
    start, end = gt_or_span
    return Detection(vid, label, score, start, end, np.full(end - start + 1, 50, np.int64),
                     np.zeros(end - start + 1, np.int64))


def test_grouped_map_hand_case():
    """Two "cut" tubes, W widespread and S saturated; A finds W (score 0.9), C is a false alarm (0.8), B finds S
    (0.7). W's ranking: A hit, C false (B found the other group: left out) -> AP 1. S's ranking: A left out, C
    false, B hit -> points (0, 1), (0, 0), (1, 1/2): AP 1/4. Total: (1/2, 1), (1/2, 1/2), (1, 2/3)."""
    w, s = _tube("v", "cut", 0, 3, 900), _tube("v", "cut", 10, 12, 100)
    dets = [_det(w, "cut", 0.9, 1.0), _det((20, 22), "cut", 0.8, 0, "v"), _det(s, "cut", 0.7, 1.0)]
    groups = grouped_video_map(dets, [w, s], ["widespread", "saturated"], (0.5,))
    assert groups["widespread"][0][0.5] == 1.0
    assert groups["saturated"][0][0.5] == pytest.approx(0.25)
    total = video_map(dets, [w, s], (0.5,))[0][0.5]
    assert total == pytest.approx(0.5 * 1.0 + 0.5 * (0.5 + 2 / 3) / 2)
    assert set(groups) == {"widespread", "saturated"}
    only_w = grouped_video_map(dets, [w, s], ["widespread", "widespread"], (0.5,))
    assert only_w == {"widespread": video_map(dets, [w, s], (0.5,))}  # one group = the plain mAP
    with pytest.raises(ValueError, match="group names"):
        grouped_video_map(dets, [w, s], ["widespread"], (0.5,))


def _slow_grouped_ap(dets, gts, group, name, label, th):
    """Greedy matching over every tube of the class, written out; the group's AP by the trapezoid, by hand."""
    cls = [g for g in gts if g.label == label]
    of = [n for g, n in zip(gts, group) if g.label == label]
    ranked = sorted([d for d in dets if d.label == label], key=lambda d: -d.score)
    free = [True] * len(cls)
    outcome = []
    for d in ranked:
        best, best_iou = None, -1.0
        for j, g in enumerate(cls):
            if free[j] and g.video_id == d.video_id:
                iou = tube_iou_voxel(d, g)
                if iou > best_iou:
                    best, best_iou = j, iou
        if best is not None and best_iou >= th:
            free[best] = False
            if of[best] == name:
                outcome.append(True)
        else:
            outcome.append(False)
    n_gt = sum(o == name for o in of)
    tp = fp = 0
    ap, last_r, last_p = 0.0, 0.0, 1.0
    for hit in outcome:
        tp, fp = tp + hit, fp + (not hit)
        r, p = tp / n_gt, tp / (tp + fp)
        ap += (r - last_r) * (p + last_p) / 2
        last_r, last_p = r, p
    return ap, n_gt


def test_grouped_map_matches_a_slow_reference():
    rng = np.random.default_rng(11)
    for _ in range(30):
        gts, dets = [], []
        for vid in ("a", "b", "c"):
            for label in ("cut", "mix"):
                for _ in range(int(rng.integers(0, 3))):
                    start = int(rng.integers(0, 20))
                    gts.append(_tube(vid, label, start, start + int(rng.integers(0, 5)), int(rng.integers(10, 200))))
        for g in gts:
            for _ in range(int(rng.integers(0, 3))):
                dets.append(_det(g, g.label if rng.random() < 0.8 else "stir", float(rng.random()),
                                 float(rng.random())))
        for _ in range(3):
            start = int(rng.integers(0, 20))
            dets.append(_det((start, start + 2), "cut", float(rng.random()), 0, str(rng.choice(["a", "b"]))))
        group = ["widespread" if g.box_area[0] > 100 else "saturated" for g in gts]
        result = grouped_video_map(dets, gts, group, (0.2, 0.6))
        for name in ("widespread", "saturated"):
            labels = sorted({g.label for g, n in zip(gts, group) if n == name})
            if not labels:
                assert name not in result
                continue
            for th in (0.2, 0.6):
                aps = [_slow_grouped_ap(dets, gts, group, name, label, th)[0] for label in labels]
                assert result[name][0][th] == pytest.approx(np.mean(aps))


# ---- the split in the scorer ------------------------------------------------------------------------------------
def test_area_is_the_tube_mean_of_clipped_box_pixels(tmp_path):
    """A tube's area is the mean of its boxes' pixels inside the frame: boxes of 100 and 900 pixels make 500,
    so at A = 600 the tube is saturated though one of its frames is larger; a box reaching past the frame counts
    only its pixels inside, so the frame size decides."""
    boxes = {"v": [{"second": 1, "box": [0, 0, 9, 9], "step_name": "cut"},
                   {"second": 2, "box": [0, 0, 29, 29], "step_name": "cut"},
                   {"second": 6, "box": [40, 30, 79, 59], "step_name": "mix"}]}  # 40x30 = 1200 px in a big frame
    segments = {"v": [{"segment": [1, 2], "id": 0, "sentence": "cut"}, {"segment": [6, 6], "id": 1, "sentence": "mix"}]}
    bench = _bench(tmp_path / "bench", boxes, segments, {"v": list(SIZE)})
    empty = Predictions("mem", PredictionsMeta("gyt", "none"), {}, {}, {})

    def groups(area, **kw):
        rows = gyt.score(gyt.GytConfig(str(bench), missing="miss", area_split=area, **kw), empty)["area_groups"]
        return {r["group"]: (r["tubes"], r["frames"], r["frames_over_area"]) for r in rows}

    # in 64x48 the mix box keeps 24 x 18 = 432 pixels
    assert groups(600) == {"widespread": (0, 0, 0), "saturated": (2, 3, 1), "total": (2, 3, 1)}
    assert groups(499) == {"widespread": (1, 2, 1), "saturated": (1, 1, 0), "total": (2, 3, 1)}
    assert groups(500)["widespread"] == (0, 0, 0)  # larger than A, strictly
    assert groups(431)["widespread"] == (2, 3, 2)
    assert groups(1000, frame_size=(100, 100))["widespread"] == (1, 1, 1)  # mix: all 1200 pixels
    m = gyt.score(gyt.GytConfig(str(bench), missing="miss", area_split=600), empty)
    assert m["area_groups"][0]["map@0.4"] is None  # no widespread tube
    assert m["area_groups"][1]["map@0.4"] == 0.0 and m["area_split"] == 600


def test_area_groups_in_the_scorer_match_grouped_map(two_videos, tmp_path):
    preds = _random_file(tmp_path / "p.h5", np.random.default_rng(8), tubes_per_video=6)
    m = gyt.score(gyt.GytConfig(str(two_videos), missing="miss", mask_threshold=0.001, area_split=3000), preds)
    rows = {r["group"]: r for r in m["area_groups"]}
    # tubes: a/cut 441 px, a/mix 3072 px (the whole 64x48 frame), b/cut 141 x 111 px, b/mix 16 x 21 px
    assert (rows["widespread"]["tubes"], rows["saturated"]["tubes"], rows["total"]["tubes"]) == (2, 2, 4)
    assert (rows["widespread"]["frames"], rows["saturated"]["frames"]) == (2 + 3, 3 + 2)
    assert rows["total"]["map@0.4"] == m["map@0.4"]
    assert any(r["map@0.1"] for r in rows.values())


# ---- command lines ----------------------------------------------------------------------------------------------
def _write(path, rng):
    _random_file(path, rng)
    return path


def test_cli_prints_a_row_per_rule_and_the_groups(two_videos, tmp_path, capsys):
    path = _write(tmp_path / "p.h5", np.random.default_rng(2))
    args = ["gyt", "--predictions", path, "--benchmark-dir", two_videos, "--missing", "miss"]
    m = run_score(capsys, *args, "--mask-threshold", "0.001,0.01,0.1", "--mask-normalise", "max,none",
                  "--area-split", "3000")
    assert len(m["thresholds"]) == 6 and [r["group"] for r in m["area_groups"]] == ["widespread", "saturated", "total"]
    assert score.main([str(a) for a in args] + ["--mask-threshold", "0.001,0.01", "--area-split", "3000"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = out.index("thresholds:")
    assert out[head + 1].split()[:4] == ["mask_normalise", "mask_threshold", "map@0.1", "map@0.2"]
    assert [line.split()[:2] for line in out[head + 2:head + 4]] == [["max", "0.001"], ["max", "0.01"]]
    assert out[head + 1].split()[-2:] == ["widespread_map@0.4", "saturated_map@0.4"]
    assert "area_groups:" in out
    by_key = run_score(capsys, *args, "mask_threshold=[0.001,0.01,0.1]", "mask_normalise=[max,none]",
                       "area_split=3000")
    assert by_key == m
    single = run_score(capsys, *args, "--mask-threshold", "0.01", "--area-split", "0")
    assert "thresholds" not in single and "area_groups" not in single


@pytest.mark.parametrize("bad, names", [
    (["--mask-threshold", "0,0.01"], ["mask_threshold", "0.0", "(0, 1]"]),
    (["--mask-threshold", "0.01,nan"], ["mask_threshold", "nan"]),
    (["--mask-threshold", "0.01,1.5"], ["mask_threshold", "1.5"]),
    (["--mask-threshold", "0.01,0.1,0.01"], ["mask_threshold", "0.01", "twice"]),
    (["--mask-threshold", "inf"], ["mask_threshold", "inf"]),
    (["--mask-normalise", "max,mean"], ["mask_normalise", "'mean'"]),
    (["--mask-normalise", "none,none"], ["mask_normalise", "twice"]),
    (["--area-split", "-1"], ["area_split", "-1"]),
    (["area_split=1.5"], ["area_split"]),
])
def test_bad_sweeps_are_one_error_line(two_videos, tmp_path, capsys, bad, names):
    path = _write(tmp_path / "p.h5", np.random.default_rng(2))
    err = score_fails(capsys, "gyt", "--predictions", path, "--benchmark-dir", two_videos, "--missing", "miss", *bad)
    assert all(n in err for n in names), err


def test_a_list_for_a_task_without_sweeps_is_one_error_line(gyt_dir, tmp_path, capsys):
    path = tmp_path / "centre.h5"
    run_baseline("centre-cell", "--task", "gyt-spatial", "--benchmark-dir", gyt_dir, "--out", path)
    args = ["gyt-spatial", "--predictions", path, "--benchmark-dir", gyt_dir]
    assert "mask_threshold" in score_fails(capsys, *args, "--mask-threshold", "0.01,0.1")
    assert "mask_normalise" in score_fails(capsys, *args, "--mask-normalise", "max,none")
    assert "--area-split does not apply to gyt-spatial" in score_fails(capsys, *args, "--area-split", "60000")
    assert run_score(capsys, *args, "--mask-threshold", "0.1")["mask_threshold"] == 0.1  # one value as before


def test_eval_run_passes_the_lists_and_the_split_to_the_scorer(tmp_path):
    argv = ["gyt", "--run", str(tmp_path), "--store", "s.zarr", "--benchmark-dir", "d",
            "--mask-threshold", "0.001,0.01", "--mask-normalise", "max,none", "--area-split", "0"]
    args = eval_run._parser().parse_intermixed_args(argv)
    cmd = eval_run.score_argv(args, tmp_path / "p.h5", tmp_path / "m.json")
    assert cmd[cmd.index("--mask-threshold") + 1] == "0.001,0.01"
    assert cmd[cmd.index("--mask-normalise") + 1] == "max,none"
    assert cmd[cmd.index("--area-split") + 1] == "0"
    parsed = score._parser().parse_intermixed_args(cmd)
    assert (parsed.mask_threshold, parsed.mask_normalise, parsed.area_split) == ((0.001, 0.01), ("max", "none"), 0)
    for bad in (["--mask-normalise", "max,mean"], ["--mask-threshold", "0.1,x"]):
        with pytest.raises(SystemExit):
            eval_run._parser().parse_intermixed_args(argv + bad)
    spatial = eval_run.score_argv(eval_run._parser().parse_intermixed_args(["gyt-spatial", *argv[1:]]),
                                  tmp_path / "p.h5", tmp_path / "m.json")
    assert "--area-split" not in spatial  # gyt-spatial has no such setting


def test_score_error_type_is_used_for_bad_rules(two_videos):
    with pytest.raises(ScoreError, match="mask_threshold"):
        gyt.mask_sweep(gyt.GytConfig(str(two_videos), mask_threshold=()))
    rules = gyt.mask_sweep(gyt.GytConfig(str(two_videos), mask_threshold=(0.1, 0.2), mask_normalise="none"))
    assert [(m.rule.threshold, m.rule.normalise) for m in rules] == [(0.1, False), (0.2, False)]
    assert [m.rule for m in gyt.mask_sweep(gyt.GytConfig(str(two_videos), protocol="reference",
                                                         mask_normalise=("none", "max")))] == \
        [MaskRule(1e-4, False), MaskRule(1e-4, True)]
