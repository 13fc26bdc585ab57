"""gyt-clips end to end: eval.infer and eval.score on a constructed store (tiny CLIP text features, a hand-made
head, then the frozen features' global-sim), and a clip past the end of the features."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.predictions import read_predictions
from pipeline.encoders import build_encoders
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import (
    cell_box, identity_head, run_global_sim, run_infer, save_run, unit, write_gyt_files, write_store,
)

E2E_SIZE = (320, 240)
ACTIONS = {"spin red circle": ((6, 9), (1, 5)), "move blue square": ((15, 18), (4, 2))}  # seconds, cell
SECONDS = 24


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store whose action seconds carry the action's sentence vector and one grid cell its text (as
    tests/eval/test_inference_constructed.py), with both actions far enough from second 0 to have a clip."""
    root = tmp_path_factory.mktemp("gyt-clips")
    encoder = build_encoders(["clip"], "tiny", resize="squash", device="cpu")["clip"]
    text = encoder.encode_text(list(ACTIONS))
    sentence = unit(text["sentence"])
    words = [unit(w[m].sum(0)) for w, m in zip(text["words"], text["mask"])]
    away = unit(-(sentence.sum(0)))
    global_, grid = np.tile(away, (SECONDS, 1)), np.tile(away, (SECONDS, 7, 7, 1))
    for k, ((a, b), (r, c)) in enumerate(ACTIONS.values()):
        target = 4.0 * (sentence[k] + words[k])
        global_[a:b + 1] = sentence[k]
        grid[a:b + 1] = -target
        grid[a:b + 1, r, c] = target
    store = str(root / "store.zarr")
    write_store(store, encoder.spec, {"vid-a": (global_.astype(np.float16), grid.astype(np.float16))})
    steps = [(label, a, b, cell_box(r, c, E2E_SIZE)) for label, ((a, b), (r, c)) in ACTIONS.items()]
    bench = write_gyt_files(root / "benchmarks", {"vid-a": {"size": E2E_SIZE, "steps": steps}})
    run = save_run(root / "run", identity_head(encoder.spec["dims"]["grid"]), encoder.spec)
    return store, bench, run


def test_infer_and_score_end_to_end(world, tmp_path, capsys, one_thread):
    store, bench, run = world
    common = ["--store", store, "--benchmark-dir", bench, "--no-progress", "device=cpu"]
    out = tmp_path / "p.h5"
    summary = run_infer(capsys, "gyt-clips", "--run", run, "--out", out, *common)
    assert summary["clips"] == len(ACTIONS) and summary["missing"] == {}
    preds = read_predictions(out)
    assert preds.meta.task == "gyt-clips"
    got = {sp.query: (sp.start, sp.end, sp.heatmaps.shape[0], len(sp.foreground), sp.threshold)
           for sp in preds.spatial["vid-a"].values()}
    assert got == {"spin red circle": (3, 12, 10, 10, 0.5), "move blue square": (12, 21, 10, 10, 0.5)}
    m = run_score(capsys, "gyt-clips", "--predictions", out, "--benchmark-dir", bench)
    assert m["iou_pointing"] == 100.0 and m["mean_tiou"] == 1.0 and m["map@0.1"] == 1.0
    assert m["frames"] == 8 and m["missing_clips"] == []
    # the frozen features (global-sim) on the same clips: every group the scorer asks for
    base = tmp_path / "g.h5"
    run_global_sim(capsys, "--task", "gyt-clips", "--out", base, *common)
    m = run_score(capsys, "gyt-clips", "--predictions", base, "--benchmark-dir", bench)
    assert m["clips"] == 2 and m["missing_clips"] == [] and m["temporal_accuracy"] == 100.0
    # a clip past the end of the features: a miss per clip, or the run fails
    folder = bench / "groundingyoutube"
    segs = json.loads((folder / "ground_seg_3to20.json").read_text())
    segs["vid-a"].append({"segment": [19, 22], "id": 2, "sentence": "spin red circle"})
    ghost = tmp_path / "ghost" / "groundingyoutube"
    ghost.mkdir(parents=True)
    for f in folder.iterdir():
        (ghost / f.name).write_text(f.read_text())
    (ghost / "ground_seg_3to20.json").write_text(json.dumps(segs))
    args = ["gyt-clips", "--run", run, "--store", store, "--benchmark-dir", ghost.parent, "--no-progress",
            "device=cpu"]
    summary = run_infer(capsys, *args, "--out", tmp_path / "m.h5", "--missing", "miss")
    assert list(summary["missing"]) == ["vid-a/2"]
    m = run_score(capsys, "gyt-clips", "--predictions", tmp_path / "m.h5", "--benchmark-dir", ghost.parent,
                  "--missing", "miss")
    assert m["missing_clips"] == ["vid-a/2"] and m["clips"] == 3
    assert m["foreground_recall"] == pytest.approx(8 / 12)  # the missed clip's 4 step seconds stay in
