"""eval.score builds each task's scorer config with pipeline.config (defaults <- flags given <- key=value): one
scorer per task of eval.tasks, flags and overrides that give the same metrics, and one-line errors for an unknown
key, a bad value or a flag the task does not use."""
from __future__ import annotations

import dataclasses

import pytest

from eval import score
from eval.predictions import BACKGROUND
from eval.scorers import SCORERS, gyt, gyt_spatial, mining, moments, retrieval, youcook
from eval.tasks import DESCRIPTIONS, GROUNDING_TASKS, SPATIAL_TASKS, TASKS
from pipeline.config import valid_keys
from tests.eval.helpers import mining_file, run_baseline, run_score, score_fails


def test_every_task_has_a_scorer():
    assert tuple(SCORERS) == TASKS == tuple(DESCRIPTIONS)
    assert set(SPATIAL_TASKS) <= set(GROUNDING_TASKS) <= set(TASKS)
    for task, scorer in SCORERS.items():
        assert dataclasses.is_dataclass(scorer.config) and scorer.config.__dataclass_params__.frozen, task
        assert {"benchmark_dir", "protocol", "missing"} <= set(valid_keys(scorer.config)), task
        assert set(scorer.required) <= set(valid_keys(scorer.config)), task


def _config(*argv: str):
    return score.scorer_config(score._parser().parse_intermixed_args(["--predictions", "p.h5", *argv]))


def test_flags_left_out_keep_the_old_command_line_defaults():
    """The flags that had argparse defaults now default to None: the config's defaults are the same values."""
    assert _config("gyt", "--benchmark-dir", "d") == gyt.GytConfig("d")
    assert (gyt.GytConfig("d").tube_iou, gyt.GytConfig("d").pools) == ("voxel", "vid2step.json")
    assert _config("gyt-spatial", "--benchmark-dir", "d") == gyt_spatial.GytSpatialConfig("d")
    assert _config("youcook", "--benchmark-dir", "d") == youcook.YouCookConfig("d")
    cfg = _config("mining", "--benchmark-dir", "d")
    assert cfg == mining.MiningConfig("d")
    assert (cfg.lengths, cfg.classes, cfg.temperature) == ("weakYouTube_length.txt", "weakYouTube_dict.txt", 1.0)
    cfg = _config("moments", "--benchmark-dir", "d", "--benchmark", "youcook2")
    assert cfg == moments.MomentsConfig("d", "youcook2")
    assert (cfg.subset, cfg.ranks, cfg.ious) == ("validation", (1, 5), (0.3, 0.5, 0.7))
    assert _config("retrieval") == retrieval.RetrievalConfig()
    assert _config("retrieval", "--benchmark-dir", "d/", "--subset", "val").benchmark_dir == "d"  # as a Path


def test_key_value_overrides_are_typed_and_come_after_the_flags():
    cfg = _config("moments", "--benchmark-dir", "d", "--benchmark", "gyt", "--ranks", "1,10", "ranks=[1,2]",
                  "ious=0.5,0.9", "subset=test")
    assert (cfg.ranks, cfg.ious, cfg.subset) == ((1, 2), (0.5, 0.9), "test")
    cfg = _config("gyt-spatial", "benchmark_dir=d", "frame_size=[64,48]", "mask_normalise=none")
    assert (cfg.benchmark_dir, cfg.frame_size, cfg.mask_normalise) == ("d", (64, 48), "none")
    assert _config("gyt", "--benchmark-dir", "d", "--mask-normalise", "none").mask_normalise == "none"
    assert _config("gyt", "--benchmark-dir", "d", "pools=null").pools is None


@pytest.fixture()
def spatial_file(gyt_dir, tmp_path):  # noqa: F811
    """A centre-cell prior (7x7 heatmaps) for the gyt-spatial queries of `gyt_dir`."""
    path = tmp_path / "centre.h5"
    run_baseline("centre-cell", "--task", "gyt-spatial", "--benchmark-dir", gyt_dir, "--out", path)
    return path


@pytest.mark.parametrize("flags, overrides, key, value", [
    (["--mask-threshold", "0.02"], ["mask_threshold=0.02"], "mask_threshold", 0.02),
    (["--mask-normalise", "none"], ["mask_normalise=none"], "mask_normalise", False),
    (["--frame-size", "640x480"], ["frame_size=[640,480]"], "frame_sizes", "--frame-size 640x480"),
    (["--protocol", "reference", "--boxes", "box_anno.json", "--segments", "from-boxes"],
     ["protocol=reference", "boxes=box_anno.json", "segments=from-boxes"], "box_convention", "reference"),
])
def test_an_override_and_its_flag_give_the_same_metrics(spatial_file, gyt_dir, capsys, flags, overrides, key,
                                                        value):  # noqa: F811
    args = ["gyt-spatial", "--predictions", spatial_file, "--benchmark-dir", gyt_dir]
    default = run_score(capsys, *args)
    by_flag = run_score(capsys, *args, *flags)
    assert by_flag == run_score(capsys, *args, *overrides)
    assert by_flag[key] == value != default[key]


def test_mining_override_and_flag(mining_dir, tmp_path, capsys):  # noqa: F811
    pool = [BACKGROUND, "crack_egg", "stir"]
    labels = [BACKGROUND] * 3 + ["crack_egg"] * 2 + ["stir"] * 3 + [BACKGROUND] * 2
    path = tmp_path / "p.h5"
    mining_file(path, {"a": (labels, pool), "b": (["stir"] * 3, pool)})
    by_flag = run_score(capsys, "mining", "--predictions", path, "--benchmark-dir", mining_dir, "--temperature", "2")
    by_key = run_score(capsys, "mining", "--predictions", path, f"benchmark_dir={mining_dir}", "temperature=2")
    assert by_flag == by_key and by_flag["temperature"] == 2.0


@pytest.mark.parametrize("bad, names", [
    (["mask_treshold=0.02"], ["unknown key 'mask_treshold'", "mask_threshold"]),
    (["mask_threshold=much"], ["mask_threshold", "'much'"]),
    (["frame_size=[64]"], ["frame_size"]),
    (["protocol=published"], ["protocol", "'published'", "paper"]),
    (["missing=skip"], ["missing", "'skip'"]),
    (["mask_normalise=mean"], ["mask_normalise", "'mean'"]),
    (["threshold"], ["'threshold'", "KEY=VALUE"]),
])
def test_an_unknown_key_or_a_bad_value_is_one_error_line(spatial_file, gyt_dir, capsys, bad, names):  # noqa: F811
    err = score_fails(capsys, "gyt-spatial", "--predictions", spatial_file, "--benchmark-dir", gyt_dir, *bad)
    assert all(name in err for name in names), err


@pytest.mark.parametrize("task, flag", [
    ("gyt-spatial", ["--lengths", "weakYouTube_length.txt"]),   # the old default, given explicitly
    ("gyt-spatial", ["--tube-iou", "voxel"]),
    ("gyt-spatial", ["--subset", "validation"]),
    ("mining", ["--frame-size", "640x480"]),
    ("gyt", ["--benchmark", "gyt"]),
    ("retrieval", ["--ious", "0.5"]),
])
def test_a_flag_the_task_does_not_use_is_an_error(spatial_file, gyt_dir, capsys, task, flag):  # noqa: F811
    err = score_fails(capsys, task, "--predictions", spatial_file, "--benchmark-dir", gyt_dir, *flag)
    assert f"{flag[0]} does not apply to {task}" in err


def test_required_settings_keep_their_message(spatial_file, gyt_dir, capsys):  # noqa: F811
    assert "moments needs --benchmark and --benchmark-dir" in score_fails(
        capsys, "moments", "--predictions", spatial_file, "--benchmark-dir", gyt_dir)
    assert "gyt-spatial needs --benchmark-dir" in score_fails(capsys, "gyt-spatial", "--predictions", spatial_file)
