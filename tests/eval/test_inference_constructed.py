"""Inference end to end on a store whose features are constructed from the tiny CLIP encoder's own text
features: frames of an action carry the action's sentence vector, and one grid cell per action carries the
action's text, so a correct method finds every action and points into its cell. Checked for the frozen
features (the global-sim baseline) and a hand-made head saved as a run, through the real scorers; and the
missing-video policy both ways."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from eval import infer, score
from eval.inference.encoder import EncoderMismatch, EncoderOptions, rebuild_encoder
from eval.metrics.heatmaps import first_argmax, upsample
from eval.predictions import read_predictions
from pipeline.encoders import build_encoders
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import (
    cell_box, identity_head, run_eval, run_global_sim, run_infer, save_run, unit, write_gyt_files, write_store,
)

SIZE = (320, 240)
ACTIONS = {"spin red circle": ((2, 5), (1, 5)), "move blue square": ((7, 9), (4, 2))}  # seconds, cell
SECONDS = 12


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _features(encoder) -> tuple[np.ndarray, np.ndarray]:
    """(global [12, D], grid [12, 7, 7, D]): action frames carry their sentence vector; their cell carries
    sentence + words; everything else points away from both texts."""
    text = encoder.encode_text(list(ACTIONS))
    sentence = unit(text["sentence"])
    words = [unit(w[m].sum(0)) for w, m in zip(text["words"], text["mask"])]
    away = unit(-(sentence.sum(0)))
    global_ = np.tile(away, (SECONDS, 1))
    grid = np.tile(away, (SECONDS, 7, 7, 1))
    for k, ((a, b), (r, c)) in enumerate(ACTIONS.values()):
        target = 4.0 * (sentence[k] + words[k])
        assert (text["words"][k][text["mask"][k]] @ target > 0).all()  # every query word prefers the cell
        global_[a:b + 1] = sentence[k]
        grid[a:b + 1] = -target
        grid[a:b + 1, r, c] = target
    return global_.astype(np.float16), grid.astype(np.float16)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(store, benchmarks dir, run dir, encoder spec)."""
    root = tmp_path_factory.mktemp("constructed")
    encoder = build_encoders(["clip"], "tiny", resize="squash", device="cpu")["clip"]
    store = str(root / "store.zarr")
    write_store(store, encoder.spec, {"vid-a": _features(encoder)})
    steps = [(label, a, b, cell_box(r, c, SIZE)) for label, ((a, b), (r, c)) in ACTIONS.items()]
    bench = write_gyt_files(root / "benchmarks", {"vid-a": {"size": SIZE, "steps": steps}})
    run = save_run(root / "run", identity_head(encoder.spec["dims"]["grid"]), encoder.spec)
    return store, bench, run, encoder.spec


def _common(world, *extra):
    store, bench, *_ = world
    return ["--store", store, "--benchmark-dir", bench, "--no-progress", "device=cpu", *extra]


@pytest.mark.parametrize("protocol", ["paper", "reference"])
def test_global_sim_finds_and_points(world, tmp_path, capsys, protocol):
    bench = world[1]
    for task in ("gyt-spatial", "gyt"):
        out = tmp_path / f"{task}.h5"
        run_global_sim(capsys, "--task", task, "--out", out, "--protocol", protocol, *_common(world))
        metrics = run_score(capsys, task, "--predictions", out, "--benchmark-dir", bench, "--protocol", protocol)
        if task == "gyt":
            assert metrics["temporal_accuracy"] == 100.0 and metrics["iou_pointing"] == 100.0
            assert metrics["detections"] == len(ACTIONS) and metrics["action_seconds_without_tube"] == 0
            assert metrics["map@0.1"] == 1.0 and set(metrics["per_class"]) == set(ACTIONS)
        else:
            assert metrics["pointing_accuracy"] == pytest.approx(_expected_pointing(out, protocol))
            assert metrics["frames"] == sum(b - a + 1 for (a, b), _ in ACTIONS.values())


def _expected_pointing(predictions, protocol: str) -> float:
    """100 % under the paper protocol. The reference protocol scores each segment's last second on the black
    frame's map (`padding`): a hit only where that map happens to point into the last box."""
    if protocol == "paper":
        return 100.0
    hits, frames = 0, 0
    for sp in read_predictions(predictions).spatial["vid-a"].values():
        (a, b), (r, c) = ACTIONS[sp.query.replace("_", " ")]
        assert sp.padding is not None  # no segment fills whole 16-frame clips
        x, y = first_argmax(upsample(sp.padding[None], SIZE))[0]
        x1, y1, x2, y2 = cell_box(r, c, SIZE)
        hits += (b - a) + int(x1 <= x <= x2 and y1 <= y <= y2)
        frames += b - a + 1
    return 100.0 * hits / frames


def test_global_sim_heatmaps_are_region_query_cosines(world, tmp_path, capsys):
    out = tmp_path / "g.h5"
    run_global_sim(capsys, "--task", "gyt-spatial", "--out", out, *_common(world))
    encoder = build_encoders(["clip"], "tiny", resize="squash", device="cpu")["clip"]
    preds = read_predictions(out)
    grid = _features(encoder)[1].astype(np.float32)
    for sp in preds.spatial["vid-a"].values():
        sentence = unit(encoder.encode_text([sp.query])["sentence"][0])
        want = unit(grid[sp.start:sp.end + 1]) @ sentence
        np.testing.assert_allclose(sp.heatmaps, want, atol=2e-3)


@pytest.mark.parametrize("protocol", ["paper", "reference"])
def test_hand_made_head_points_and_detects(world, tmp_path, capsys, protocol):
    store, bench, run, _ = world
    out = tmp_path / "p.h5"
    summary = run_infer(capsys, "gyt-spatial", "--run", run, "--out", out, "--protocol", protocol, *_common(world))
    assert summary["queries"] == len(ACTIONS) and summary["missing"] == {}
    metrics = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", bench, "--protocol", protocol)
    assert metrics["pointing_accuracy"] == pytest.approx(_expected_pointing(out, protocol))
    with h5py.File(out) as f:  # the reference preset writes the black frame's map for the padded last second
        assert all(("padding" in g) == (protocol == "reference") for g in f["spatial/vid-a"].values())
    metrics = run_eval(capsys, "gyt", "--run", run, "--protocol", protocol, *_common(world))
    assert metrics["temporal_accuracy"] == 100.0 and metrics["iou_pointing"] == 100.0
    assert metrics["run"]["step"] == 1 and metrics["inference"]["tubes"] == len(ACTIONS)
    saved = json.loads((run / "eval" / f"gyt-{protocol}" / "metrics.json").read_text())
    assert saved == metrics


def _with_ghost(bench, tmp_path):
    """A copy of the benchmark with a video the store lacks and a vid-a step past the end of its features."""
    ghost = tmp_path / "bench"
    shutil.copytree(bench, ghost)
    folder = ghost / "groundingyoutube"
    data = {name: json.loads((folder / f"{name}.json").read_text())
            for name in ("box_anno", "ground_seg_3to20", "vid2step", "id2wh_new")}
    data["box_anno"]["ghost"] = [{"second": s, "box": [10, 10, 100, 100], "step_name": "spin red circle"}
                                 for s in range(3, 6)]
    data["box_anno"]["vid-a"] += [{"second": s, "box": [10, 10, 100, 100], "step_name": "spin red circle"}
                                  for s in (20, 21)]
    data["ground_seg_3to20"]["ghost"] = [{"segment": [3, 5], "id": 0, "sentence": "spin red circle"}]
    data["ground_seg_3to20"]["vid-a"].append({"segment": [20, 21], "id": 2, "sentence": "spin red circle"})
    data["vid2step"]["ghost"] = ["spin red circle", "background"]
    data["id2wh_new"]["ghost"] = list(SIZE)
    for name, value in data.items():
        (folder / f"{name}.json").write_text(json.dumps(value))
    return ghost


def test_missing_videos_fail_or_are_scored_as_misses(world, tmp_path, capsys):
    store, bench, run, _ = world
    ghost = _with_ghost(bench, tmp_path)
    args = ["--run", run, "--store", store, "--benchmark-dir", ghost, "--no-progress", "device=cpu"]
    assert infer.main(["gyt-spatial", *map(str, args), "--out", str(tmp_path / "f.h5")]) == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "no clip features in the store" in err and not (tmp_path / "f.h5").exists()
    out = tmp_path / "m.h5"
    summary = run_infer(capsys, "gyt-spatial", *args, "--out", out, "--missing", "miss")
    assert summary["missing_videos"] == ["ghost", "vid-a"] and "ghost/0" in summary["missing"]
    assert "no stored features at second 20" in summary["missing"]["vid-a/2"]
    preds = read_predictions(out)
    assert set(preds.spatial) == {"vid-a"} and set(preds.spatial["vid-a"]) == {"0", "1"}
    assert preds.meta.metadata["inference"]["missing"] == summary["missing"]
    assert score.main(["gyt-spatial", "--predictions", str(out), "--benchmark-dir", str(ghost)]) == 2
    assert "--missing miss" in capsys.readouterr().err
    metrics = run_score(capsys, "gyt-spatial", "--predictions", out, "--benchmark-dir", ghost, "--missing", "miss")
    n_good = sum(b - a + 1 for (a, b), _ in ACTIONS.values())
    assert metrics["frames"] == n_good + 3 + 2 and metrics["missing_videos"] == ["ghost"]
    assert metrics["pointing_accuracy"] == pytest.approx(100.0 * n_good / (n_good + 5))
    # the untrimmed task needs whole videos: vid-a's features end before its last annotated second
    metrics = run_eval(capsys, "gyt", *args, "--missing", "miss", "--out-dir", tmp_path / "eval")
    assert metrics["missing_videos"] == ["ghost", "vid-a"] and metrics["inference"]["missing_videos"] == \
        ["ghost", "vid-a"]
    assert metrics["iou_pointing"] == 0.0


def test_the_text_encoder_must_be_the_stores(world):
    spec = world[3]
    assert rebuild_encoder(spec, EncoderOptions()).spec["weights_sha256"] == spec["weights_sha256"]
    # how grids are kept on disk is not the encoder's: a store of int8 grids rebuilds the same encoder
    assert rebuild_encoder({**spec, "grid_dtype": "int8"}, EncoderOptions()).spec == rebuild_encoder(
        spec, EncoderOptions()).spec
    with pytest.raises(EncoderMismatch, match="bogus_key: store has 1, the rebuilt encoder has none"):
        rebuild_encoder({**spec, "bogus_key": 1}, EncoderOptions())
    with pytest.raises(EncoderMismatch, match="weights_sha256: store has 'other'"):
        rebuild_encoder({**spec, "weights_sha256": "other"}, EncoderOptions())
    with pytest.raises(EncoderMismatch, match="cannot rebuild.*bogus"):
        rebuild_encoder({**spec, "preprocessing": {**spec["preprocessing"], "normalize": "bogus"}},
                        EncoderOptions(preset="tiny"))


def test_bad_inputs_exit_2(world, tmp_path, capsys):
    store, bench, run, _ = world
    args = ["gyt", "--run", str(run), "--store", store, "--benchmark-dir", str(bench), "--out", str(tmp_path / "x.h5")]
    assert infer.main([*args, "temporal.bogus=1"]) == 2
    assert "unknown key 'temporal.bogus'" in capsys.readouterr().err
    assert infer.main([*args[:2], str(tmp_path / "no-run"), *args[3:]]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_centre_cropped_features_are_refused_for_spatial_tasks(world, tmp_path, capsys):
    """A centre crop's grid covers only the middle of a non-square frame; the scorers spread heatmaps over the
    whole frame, so spatial inference needs squashed frames."""
    _, bench, run, _ = world
    encoder = build_encoders(["clip"], "tiny", resize="center-crop", device="cpu")["clip"]
    store = str(tmp_path / "crop.zarr")
    write_store(store, encoder.spec, {"vid-a": _features(encoder)})
    code = infer.main(["gyt-spatial", "--run", str(run), "--out", str(tmp_path / "p.h5"), "--store", store,
                       "--benchmark-dir", str(bench), "--no-progress", "device=cpu"])
    assert code == 2 and "extracted with --resize center-crop" in capsys.readouterr().err
    assert not (tmp_path / "p.h5").exists()
