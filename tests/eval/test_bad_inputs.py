"""Bad inputs to the scorers end in one `error:` line naming the file and the problem, with exit code 2 (a heatmap
without cells, a NaN box, an unbounded frame size, a gyt label outside its video's pool); predictions the
benchmark does not ask for are scored as before and reported in a `warning:` line."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from eval import baselines, score
from eval.inference.config import load_infer_config
from eval.predictions import BACKGROUND, PredictionsError, PredictionsMeta, PredictionsWriter
from eval.scorers.common import ScoreError, frame_sizes, parse_frame_size
from pipeline.config import ConfigError

SIZE = (64, 48)
CUT = [30, 20, 50, 40]


@pytest.fixture()
def bench(tmp_path):
    """One GroundingYouTube video "v": "cut" boxed at seconds 2, 3, 5 of segment 2..5, "mix" at 8 of 8..9."""
    root = tmp_path / "benchmarks"
    folder = root / "groundingyoutube"
    folder.mkdir(parents=True)
    boxes = [{"second": s, "box": CUT, "step_name": "cut"} for s in (2, 3, 5)]
    boxes += [{"second": 8, "box": [10, 10, 20, 20], "step_name": "mix"}]
    files = {"box_anno": {"v": boxes}, "id2wh_new": {"v": list(SIZE)}, "vid2step": {"v": ["cut", "mix", BACKGROUND]},
             "ground_seg_3to20": {"v": [{"segment": [2, 5], "id": 0, "sentence": "cut"},
                                        {"segment": [8, 9], "id": 1, "sentence": "mix"}]}}
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return root


def _score(capsys, *args) -> tuple[int, str, str]:
    code = score.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def _one_error(err: str, *names: str) -> None:
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert all(name in err for name in names), err


def _spatial_file(path, groups: dict[tuple[str, str], np.ndarray]) -> None:
    """A gyt-spatial file written with h5py directly (as another tool could), no checks on the way."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="groundcache-predictions", version=1, task="gyt-spatial", method="other",
                       protocol="paper", metadata="{}")
        for (vid, sid), heat in groups.items():
            g = f.create_group(f"spatial/{vid}/{sid}")
            g.attrs.update(start=2, end=2 + len(heat) - 1, query="cut")
            g.create_dataset("heatmaps", data=heat)


def _oracle_spatial(path, extra: dict[tuple[str, str], tuple[int, int, str]] = ()) -> None:
    """gyt-spatial predictions for the two queries of `bench` (from-boxes: v/0 cut 2..3, v/1 cut 5, v/2 mix 8),
    plus `extra` groups {(video, segment): (start, end, query)}."""
    heat = np.zeros((7, 7), np.float32)
    heat[3, 4] = 1.0
    with PredictionsWriter(path, PredictionsMeta("gyt-spatial", "oracle")) as w:
        for (vid, sid), (a, b, q) in {("v", "0"): (2, 3, "cut"), ("v", "1"): (5, 5, "cut"), ("v", "2"): (8, 8, "mix"),
                                      **dict(extra)}.items():
            w.add_spatial(vid, sid, a, b, q, np.repeat(heat[None], b - a + 1, axis=0))


def test_a_heatmap_without_cells_is_refused(bench, tmp_path, capsys):
    path = tmp_path / "p.h5"
    _spatial_file(path, {("v", "0"): np.zeros((2, 0, 0), np.float32)})
    code, _, err = _score(capsys, "gyt-spatial", "--predictions", path, "--benchmark-dir", bench, "--missing", "miss")
    assert code == 2
    _one_error(err, str(path), "/spatial/v/0/heatmaps", "no cells")
    with pytest.raises(PredictionsError, match="no cells"):
        with PredictionsWriter(tmp_path / "w.h5", PredictionsMeta("gyt-spatial", "x")) as w:
            w.add_spatial("v", "0", 2, 3, "cut", np.zeros((2, 7, 0), np.float32))
    assert not (tmp_path / "w.h5").exists()


def test_a_prior_heatmap_needs_cells(bench, tmp_path, capsys):
    out = tmp_path / "prior.h5"
    with pytest.raises(SystemExit) as exit_info:
        baselines.main(["centre-cell", "--task", "gyt-spatial", "--benchmark-dir", str(bench), "--out", str(out),
                        "--grid", "0"])
    assert exit_info.value.code == 2 and "--grid must be a whole number in 1..64, got '0'" in capsys.readouterr().err
    assert not out.exists()


def test_a_nan_box_in_the_annotations_is_refused(bench, tmp_path, capsys):
    paths = {"gyt-spatial": tmp_path / "s.h5", "gyt": tmp_path / "t.h5"}
    _oracle_spatial(paths["gyt-spatial"])
    _gyt_file(paths["gyt"], {"v": ("cut", "mix", BACKGROUND)})
    boxes_file = bench / "groundingyoutube" / "box_anno.json"
    boxes_file.write_text(boxes_file.read_text().replace("[30, 20, 50, 40]", "[30, NaN, 50, 40]", 1))
    for task, path in paths.items():
        code, _, err = _score(capsys, task, "--predictions", path, "--benchmark-dir", bench, "--missing", "miss")
        assert code == 2
        _one_error(err, str(boxes_file))
        assert "finite" in err


def test_a_nan_box_in_the_predictions_is_refused(bench, tmp_path, capsys):
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(format="groundcache-predictions", version=1, task="gyt-spatial", method="other",
                       protocol="paper", metadata="{}")
        g = f.create_group("points/v/0")
        g.attrs.update(start=2, end=3, query="cut")
        g.create_dataset("points", data=np.full((2, 2), 30.0, np.float32))
        g.create_dataset("boxes", data=np.array([CUT, [np.nan, 1, 2, 3]], np.float32))
    code, _, err = _score(capsys, "gyt-spatial", "--predictions", path, "--benchmark-dir", bench, "--missing", "miss")
    assert code == 2
    _one_error(err, str(path), "/points/v/0/boxes", "NaN")


def test_frame_sizes_are_bounded(bench, tmp_path, capsys):
    """Refused before any heatmap is upsampled (the predictions hold none, so nothing is allocated either way)."""
    path = tmp_path / "empty.h5"
    with PredictionsWriter(path, PredictionsMeta("gyt-spatial", "none")):
        pass
    common = ["gyt-spatial", "--predictions", path, "--benchmark-dir", bench, "--missing", "miss"]
    with pytest.raises(SystemExit) as exit_info:
        score.main([str(a) for a in [*common, "--frame-size", "100000x100000"]])
    assert exit_info.value.code == 2
    assert "--frame-size: frame size 100000x100000 is out of bounds" in capsys.readouterr().err
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"v": [100000, 100000]}))
    code, _, err = _score(capsys, *common, "--sizes", sizes)
    assert code == 2
    _one_error(err, str(sizes), "'v'", "100000x100000", "out of bounds")
    with pytest.raises(ValueError, match="out of bounds"):
        parse_frame_size("640x100000")
    assert parse_frame_size("640x480") == (640, 480)
    with pytest.raises(ScoreError, match="out of bounds"):
        frame_sizes(None, (100000, 100000), None)


def test_extra_videos_and_segments_are_reported(bench, tmp_path, capsys):
    path = tmp_path / "p.h5"
    _oracle_spatial(path)
    code, out, err = _score(capsys, "gyt-spatial", "--predictions", path, "--benchmark-dir", bench)
    assert code == 0 and err == ""
    pointing = json.loads(out.splitlines()[-1])["pointing_accuracy"]
    extra = tmp_path / "extra.h5"
    _oracle_spatial(extra, {("v", "9"): (1, 1, "cut"), ("ghost", "0"): (0, 2, "cut")})
    code, out, err = _score(capsys, "gyt-spatial", "--predictions", extra, "--benchmark-dir", bench)
    assert code == 0 and json.loads(out.splitlines()[-1])["pointing_accuracy"] == pointing
    assert err.startswith("warning: ") and len(err.splitlines()) == 1
    assert str(extra) in err and "2 predicted segment(s) not in the benchmark" in err and "ghost/0, v/9" in err


def _gyt_file(path, videos: dict[str, tuple[str, ...]]) -> None:
    """gyt predictions: per video, /temporal scores over `labels` with "cut" at 2..5 and "mix" at 8..9, and one
    tube per action at its cell."""
    with PredictionsWriter(path, PredictionsMeta("gyt", "oracle")) as w:
        for vid, labels in videos.items():
            scores = np.zeros((12, len(labels)), np.float32)
            scores[:, labels.index(BACKGROUND)] = 0.5
            scores[2:6, labels.index("cut")] = scores[8:10, labels.index("mix")] = 1.0
            for i, (label, a, b) in enumerate((("cut", 2, 5), ("mix", 8, 9))):
                w.add_points(vid, i, a, b, label, points=np.full((b - a + 1, 2), 40.0 if label == "cut" else 15.0))
            w.add_temporal(vid, labels, scores)


def test_gyt_labels_must_lie_in_the_video_pool(bench, tmp_path, capsys):
    good = tmp_path / "good.h5"
    _gyt_file(good, {"v": ("cut", "mix", BACKGROUND)})
    code, out, err = _score(capsys, "gyt", "--predictions", good, "--benchmark-dir", bench)
    assert code == 0 and err == "" and json.loads(out.splitlines()[-1])["temporal_accuracy"] == 100.0
    outside = tmp_path / "outside.h5"
    _gyt_file(outside, {"v": ("cut", "mix", "whisk", BACKGROUND)})
    code, _, err = _score(capsys, "gyt", "--predictions", outside, "--benchmark-dir", bench)
    assert code == 2
    _one_error(err, str(outside), "/temporal/v", "'whisk'", "vid2step.json")
    pools = bench / "groundingyoutube" / "vid2step.json"
    pools.write_text(json.dumps({"v": ["cut", BACKGROUND]}))  # the annotation's "mix" is now outside
    code, _, err = _score(capsys, "gyt", "--predictions", good, "--benchmark-dir", bench)
    assert code == 2
    _one_error(err, "ground_seg_3to20.json", "'mix'", str(pools))


def test_gyt_extra_videos_are_reported(bench, tmp_path, capsys):
    path = tmp_path / "p.h5"
    _gyt_file(path, {"v": ("cut", "mix", BACKGROUND), "ghost": ("cut", "mix", "other", BACKGROUND)})
    code, out, err = _score(capsys, "gyt", "--predictions", path, "--benchmark-dir", bench)
    assert code == 0 and json.loads(out.splitlines()[-1])["temporal_accuracy"] == 100.0
    assert err.startswith("warning: ") and "1 predicted video(s) not in the benchmark" in err and "ghost" in err


def test_extra_moments_and_retrieval_items_are_reported(bench, tmp_path, capsys):
    moments = tmp_path / "m.h5"
    with PredictionsWriter(moments, PredictionsMeta("moments", "oracle")) as w:
        w.add_moments("v", 0, "cut", np.array([[2.0, 6.0, 1.0]]))
        w.add_moments("v", 1, "mix", np.array([[8.0, 10.0, 1.0]]))
        w.add_moments("v", 7, "stir", np.array([[0.0, 1.0, 1.0]]))
    code, out, err = _score(capsys, "moments", "--predictions", moments, "--benchmark-dir", bench,
                            "--benchmark", "gyt")
    assert code == 0 and json.loads(out.splitlines()[-1])["extra_queries"] == 1
    assert err.startswith("warning: ") and "1 predicted query(ies) not in the benchmark" in err and "v/7" in err
    retrieval = tmp_path / "r.h5"
    with PredictionsWriter(retrieval, PredictionsMeta("retrieval", "oracle")) as w:
        ids = ["v/0", "v/1", "w/3"]
        w.add_retrieval("clip", ids, ids, np.eye(3))
        w.add_retrieval("video", ["v"], ["v"], np.eye(1))
    code, out, err = _score(capsys, "retrieval", "--predictions", retrieval, "--benchmark-dir", bench,
                            "--benchmark", "gyt")
    assert code == 0 and json.loads(out.splitlines()[-1])["clip_extra"] == 1
    assert err.startswith("warning: ") and "/retrieval/clip id(s) not in the benchmark" in err and "w/3" in err


@pytest.mark.parametrize("override, message", [("fps=nan", "fps must be > 0"),
                                               ("temporal.temperature=nan", "temporal.temperature must be > 0"),
                                               ("temporal.mining_temperature=-1", "must be > 0"),
                                               ("temporal.threshold=nan", "temporal.threshold must be a finite")])
def test_inference_settings_are_bounded(override, message):
    with pytest.raises(ConfigError, match=message):
        load_infer_config("paper", None, [override])
