"""End to end on the real GroundingYouTube and YouCook2-Interactions annotations: the annotation-only baselines
reproduce the published figures (../shared/benchmarks/README.md, reference_code_eval_notes.md §5) through the
real CLIs, oracle heatmaps point 100 %, and missing videos are reported, never dropped."""
import h5py
import numpy as np
import pytest

from eval import score
from eval.predictions import PredictionsMeta, PredictionsWriter
from eval.scorers import gyt_spatial, youcook
from tests.eval.helpers import run_baseline, run_score


@pytest.fixture(scope="module")
def files(benchmarks_dir, tmp_path_factory):
    """Baseline predictions for both benchmarks, baselines and protocols (GYT at 640x480 for every video)."""
    out = tmp_path_factory.mktemp("baselines")
    paths = {}
    for protocol in ("paper", "reference"):
        for kind in ("centre", "uniform"):
            for bench, extra in (("gyt", ["--frame-size", "640x480"]), ("youcook", [])):
                path = out / f"{bench}-{kind}-{protocol}.h5"
                run_baseline(kind, "--benchmark", bench, "--benchmark-dir", benchmarks_dir, "--out", path,
                             "--protocol", protocol, *extra)
                paths[(bench, kind, protocol)] = path
    return paths


def gyt(capsys, benchmarks_dir, path, protocol, *extra):
    return run_score(capsys, "gyt-spatial", "--predictions", path, "--benchmark-dir", benchmarks_dir,
                     "--protocol", protocol, "--frame-size", "640x480", *extra)


def test_gyt_paper_baselines_match_the_published_figures(files, benchmarks_dir, capsys):
    centre = gyt(capsys, benchmarks_dir, files[("gyt", "centre", "paper")], "paper")
    assert centre["frames"] == 17_316 and centre["videos"] == 250
    assert round(centre["pointing_accuracy"], 2) == 67.15
    assert round(centre["pointing_accuracy_class_mean"], 2) == 65.06  # mean over the 660 step names
    assert len(centre["per_class"]) == 660 and centre["mean_iou"] is None  # a point has no region
    uniform = gyt(capsys, benchmarks_dir, files[("gyt", "uniform", "paper")], "paper")
    assert round(uniform["pointing_accuracy"], 2) == 17.52 and uniform["frames"] == 17_316


def test_gyt_reference_baselines_match_the_published_figures(files, benchmarks_dir, capsys):
    centre = gyt(capsys, benchmarks_dir, files[("gyt", "centre", "reference")], "reference")
    assert centre["frames"] == 17_812 and round(centre["pointing_accuracy"], 2) == 61.65
    uniform = gyt(capsys, benchmarks_dir, files[("gyt", "uniform", "reference")], "reference")
    assert round(uniform["pointing_accuracy"], 2) == 16.32
    # whole-frame mask on the README protocol: mean IoU 0.163, IoU > 0.3 rate 4.0 %, 56 empty GT masks
    assert round(uniform["mean_iou"], 3) == 0.163 and round(uniform["iou_gt_0.3"], 1) == 4.0
    assert uniform["frames_empty_box"] == 56


def test_youcook_baselines_match_the_published_figures(files, benchmarks_dir, capsys):
    for protocol in ("paper", "reference"):
        centre = run_score(capsys, "youcook", "--predictions", files[("youcook", "centre", protocol)],
                           "--benchmark-dir", benchmarks_dir, "--protocol", protocol)
        uniform = run_score(capsys, "youcook", "--predictions", files[("youcook", "uniform", protocol)],
                            "--benchmark-dir", benchmarks_dir, "--protocol", protocol)
        assert centre["frames"] == uniform["frames"] == 2_496 and centre["queries"] == 254
        assert round(centre["pointing_accuracy"], 2) == 28.85
        assert round(uniform["pointing_accuracy"], 2) == 15.14


def oracle_file(path, task, plan, sizes, cell_points):
    """Heatmaps peaked at a cell that points inside each annotated box (any cell where there is no box)."""
    hittable = 0
    with PredictionsWriter(path, PredictionsMeta(task, "oracle")) as writer:
        for q, frames in plan:
            size = sizes.of(q.video_id)
            maps = np.zeros((q.end - q.start + 1, 7, 7), np.float32)
            maps[:, 3, 3] = 1.0
            for second, box in frames:
                heatmap = cell_points.heatmap_inside(box, size)
                hittable += heatmap is not None
                if heatmap is not None:
                    maps[second - q.start] = heatmap
            writer.add_spatial(q.video_id, q.segment_id, q.start, q.end, q.query, maps)
    return hittable


def test_gyt_oracle_heatmaps_point_at_every_box_that_can_be_hit(benchmarks_dir, tmp_path, capsys, cell_points):
    cfg = gyt_spatial.GytSpatialConfig(benchmarks_dir)  # default sizes: id2wh_new.json (one portrait video)
    plan, _ = gyt_spatial.query_plan(cfg)
    hittable = oracle_file(tmp_path / "o.h5", "gyt-spatial", plan, gyt_spatial.sizes_for(cfg), cell_points)
    inverted = sum(box[2] < box[0] for _, frames in plan for _, box in frames)
    assert inverted == 18 and hittable > 0.98 * 17_316  # clipped boxes may hold no cell's point
    metrics = run_score(capsys, "gyt-spatial", "--predictions", tmp_path / "o.h5", "--benchmark-dir", benchmarks_dir)
    assert metrics["pointing_accuracy"] == pytest.approx(100 * hittable / 17_316)
    assert metrics["frames_empty_box"] == inverted and 0 < metrics["mean_iou"] < 1


def test_youcook_oracle_and_the_reference_last_frame_quirk(benchmarks_dir, tmp_path, capsys, cell_points):
    cfg = youcook.YouCookConfig(benchmarks_dir)
    plan, _ = youcook.query_plan(cfg)
    hittable = oracle_file(tmp_path / "o.h5", "youcook", plan, youcook.sizes_for(cfg), cell_points)
    paper = run_score(capsys, "youcook", "--predictions", tmp_path / "o.h5", "--benchmark-dir", benchmarks_dir)
    assert paper["pointing_accuracy"] == pytest.approx(100 * hittable / 2_496)
    reference = run_score(capsys, "youcook", "--predictions", tmp_path / "o.h5", "--benchmark-dir", benchmarks_dir,
                          "--protocol", "reference")
    last_seconds = sum(1 for q, frames in plan for second, _ in frames if second == q.end)
    assert reference["frames"] == 2_496
    assert 0 < paper["pointing_accuracy"] - reference["pointing_accuracy"] <= 100 * last_seconds / 2_496


def test_missing_video_fails_or_is_scored_as_a_miss(files, benchmarks_dir, tmp_path, capsys):
    path = tmp_path / "partial.h5"
    path.write_bytes(files[("youcook", "centre", "paper")].read_bytes())
    with h5py.File(path, "r+") as f:
        del f["points/nuwCjQVlBrg"]
    args = ["youcook", "--predictions", path, "--benchmark-dir", benchmarks_dir]
    assert score.main([str(a) for a in args]) == 2
    assert "nuwCjQVlBrg" in capsys.readouterr().err
    full = run_score(capsys, *args[:2], files[("youcook", "centre", "paper")], *args[3:])
    missed = run_score(capsys, *args, "--missing", "miss")
    assert missed["frames"] == full["frames"] == 2_496 and missed["missing_videos"] == ["nuwCjQVlBrg"]
    lost = full["per_video"]["nuwCjQVlBrg"]
    expected = full["pointing_accuracy"] - lost["pointing_accuracy"] * lost["frames"] / 2_496
    assert missed["pointing_accuracy"] == pytest.approx(expected)


def test_centre_cell_heatmap_points_where_torch_puts_its_maximum(benchmarks_dir, tmp_path, capsys, cell_points):
    """The centre-cell prior is not the centre pixel: its score is that of the point torch's upsampling picks."""
    for bench, module, cfg, extra in (
            ("gyt", gyt_spatial, gyt_spatial.GytSpatialConfig(benchmarks_dir, frame_size=(640, 480)),
             ["--frame-size", "640x480"]),
            ("youcook", youcook, youcook.YouCookConfig(benchmarks_dir), [])):
        path = tmp_path / f"{bench}.h5"
        run_baseline("centre-cell", "--benchmark", bench, "--benchmark-dir", benchmarks_dir, "--out", path, *extra)
        plan, _ = module.query_plan(cfg)
        size = module.sizes_for(cfg).of(plan[0][0].video_id)
        x, y = cell_points.table(size)[3 * 7 + 3]
        boxes = np.array([box for _, frames in plan for _, box in frames])
        expected = 100 * np.mean((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3]))
        task = "gyt-spatial" if bench == "gyt" else "youcook"
        m = run_score(capsys, task, "--predictions", path, "--benchmark-dir", benchmarks_dir, *extra)
        assert (x, y) != (size[0] // 2, size[1] // 2)
        assert m["pointing_accuracy"] == pytest.approx(expected) and m["mean_iou"] > 0


def test_reference_frame_selection_matches_the_notes(benchmarks_dir):
    """Notes §2.1/§2.3: 5,091 scored segments on seg.json, 3,311 with the last second on a padded (or, for 3,
    stale) frame; on YC-Inter 108 of 254 segments, 6 of them stale."""
    for plan, segments, last, stale in (
            (gyt_spatial.query_plan(gyt_spatial.GytSpatialConfig(benchmarks_dir, "reference"))[0], 5_091, 3_311, 3),
            (youcook.query_plan(youcook.YouCookConfig(benchmarks_dir, "reference"))[0], 254, 108, 6)):
        ends = [(q.end - q.start) % 16 == 0 for q, frames in plan if any(s == q.end for s, _ in frames)]
        assert (len(plan), len(ends), sum(ends)) == (segments, last, stale)
