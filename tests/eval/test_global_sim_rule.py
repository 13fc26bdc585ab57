"""The paper's mask rule for the frozen-feature baselines (CVPR appendix 8.3: L2-normalised sentence and region
features, mask = cosine >= 0.5) as `eval.baselines global-sim --mask-rule cosine-0.5`: recorded in the file,
applied by the gyt scorer, overridable by an explicit flag (with a warning). Checked on a store whose grid cells
have chosen cosines with the label's sentence, on 7x7 frames (upsampling 7x7 -> 7x7 is the identity, so the
mask is cell-exact)."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from eval import baselines
from eval.metrics.heatmaps import MaskRule, masks, upsample
from eval.predictions import read_predictions
from eval.scorers.common import MaskRuleOverrideWarning, ScoreError, mask_options
from pipeline.encoders import build_encoders
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import run_global_sim, unit, write_gyt_files, write_store

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (7, 7)
LABEL, START, END, SECONDS = "spin red circle", 2, 5, 8
BOX = [1, 2, 3, 4]  # pixels x 1..3, y 2..4 = cells rows 2..4, columns 1..3 on a 7x7 frame
# cosine of each cell with the label's sentence: >= 0.5 exactly in the box (peak 0.9 at row 3, column 2)
COSINES = np.array([[0.10, 0.45, 0.30, -0.20, 0.00, 0.40, 0.20],
                    [0.45, 0.48, 0.46, 0.44, 0.10, -0.30, 0.05],
                    [0.30, 0.55, 0.60, 0.52, 0.47, 0.10, 0.00],
                    [-0.10, 0.70, 0.90, 0.65, 0.42, 0.35, 0.15],
                    [0.20, 0.53, 0.58, 0.56, 0.45, 0.30, 0.25],
                    [0.05, 0.41, 0.44, 0.49, 0.30, 0.20, 0.10],
                    [0.00, 0.10, 0.20, 0.30, 0.40, -0.50, 0.45]])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(store, benchmarks dir, stored grid as float32 [SECONDS, 7, 7, D], the label's unit sentence vector)."""
    root = tmp_path_factory.mktemp("mask-rule")
    encoder = build_encoders(["clip"], "tiny", resize="squash", device="cpu")["clip"]
    sentence = unit(encoder.encode_text([LABEL])["sentence"][0].astype(np.float64))
    other = np.random.default_rng(0).standard_normal((7, 7, len(sentence)))
    other = unit(other - (other @ sentence)[..., None] * sentence)  # unit, orthogonal to the sentence
    cells = COSINES[..., None] * sentence + np.sqrt(1 - COSINES[..., None] ** 2) * other
    global_ = np.tile(-sentence, (SECONDS, 1))
    grid = np.tile(unit(other), (SECONDS, 1, 1, 1))
    global_[START:END + 1], grid[START:END + 1] = sentence, cells
    global_, grid = global_.astype(np.float16), grid.astype(np.float16)
    store = str(root / "store.zarr")
    write_store(store, encoder.spec, {"vid": (global_, grid)})
    bench = write_gyt_files(root / "benchmarks", {"vid": {"size": SIZE, "steps": [(LABEL, START, END, BOX)]}})
    return store, bench, grid.astype(np.float32), sentence


def _global_sim(world, capsys, out, *extra):
    store, bench, *_ = world
    run_global_sim(capsys, "--task", "gyt", "--out", out, "--store", store, "--benchmark-dir", bench,
                   "--no-progress", "device=cpu", *extra)
    return read_predictions(out)


def test_the_scorers_mask_is_cosine_at_least_half(world, tmp_path, capsys):
    _, _, grid, sentence = world
    preds = _global_sim(world, capsys, tmp_path / "g.h5", "--mask-rule", "cosine-0.5")
    assert preds.meta.metadata["mask_rule"]["name"] == "cosine-0.5"
    mask = mask_options("paper", metadata=preds.meta.metadata)
    assert mask.rule == MaskRule(0.5, False) and mask.named == "cosine-0.5"
    (tube,) = preds.spatial["vid"].values()
    assert (tube.query, tube.start, tube.end) == (LABEL, START, END)
    got = masks(upsample(tube.heatmaps, SIZE), mask.rule)
    cosine = np.einsum("tijd,d->tij", grid[START:END + 1] / np.linalg.norm(grid[START:END + 1], axis=-1,
                                                                           keepdims=True), sentence)
    np.testing.assert_array_equal(got, cosine >= 0.5)
    np.testing.assert_array_equal(got[0], COSINES >= 0.5)   # the constructed cosines survive float16
    box_cells = np.zeros(SIZE, bool)
    box_cells[2:5, 1:4] = True
    np.testing.assert_array_equal(got[0], box_cells)


def test_the_gyt_scorer_applies_the_recorded_rule_and_a_flag_overrides_it(world, tmp_path, capsys):
    bench = world[1]
    ruled = tmp_path / "ruled.h5"
    _global_sim(world, capsys, ruled, "--mask-rule", "cosine-0.5")
    plain = tmp_path / "plain.h5"
    preds = _global_sim(world, capsys, plain)
    assert "mask_rule" not in preds.meta.metadata
    with h5py.File(plain) as a, h5py.File(ruled) as b:  # the same maps; only the recorded rule differs
        np.testing.assert_array_equal(a["spatial/vid/0/heatmaps"][()], b["spatial/vid/0/heatmaps"][()])
    m = run_score(capsys, "gyt", "--predictions", ruled, "--benchmark-dir", bench)
    assert m["mask_rule"] == "cosine-0.5" and m["mask_threshold"] == 0.5 and m["mask_normalise"] is False
    assert m["iou_pointing"] == 100.0 and m["map_voxel@0.5"] == 1.0   # the mask is the box, every second
    default = run_score(capsys, "gyt", "--predictions", plain, "--benchmark-dir", bench)
    # the protocol's mask (>= 0.01 x the peak) takes every cell with cosine >= 0.009: IoU 9 / that many
    area = int((COSINES >= 0.01 * COSINES.max()).sum())
    assert default["mask_rule"] is None and 9 / area < 0.3
    assert default["map_voxel@0.3"] == 0.0 and default["map_voxel@0.1"] == 1.0
    with pytest.warns(MaskRuleOverrideWarning, match="overridden by mask_threshold=0.01"):
        overridden = run_score(capsys, "gyt", "--predictions", ruled, "--benchmark-dir", bench,
                               "--mask-threshold", "0.01", "--mask-normalise", "max")
    assert overridden["mask_rule"] is None
    assert {k: v for k, v in overridden.items() if k.startswith("map")} == \
           {k: v for k, v in default.items() if k.startswith("map")}


def test_the_spatial_scorers_apply_the_recorded_rule_too(world, tmp_path, capsys):
    """gyt-spatial: a file written with the rule scores as the rule's flags score a plain file."""
    store, bench, *_ = world
    files = {}
    for name, extra in (("ruled", ["--mask-rule", "cosine-0.5"]), ("plain", [])):
        files[name] = tmp_path / f"{name}.h5"
        assert baselines.main(["global-sim", "--task", "gyt-spatial", "--store", store, "--benchmark-dir",
                               str(bench), "--out", str(files[name]), "--no-progress", *extra]) == 0
        capsys.readouterr()
    ruled = run_score(capsys, "gyt-spatial", "--predictions", files["ruled"], "--benchmark-dir", bench)
    flags = run_score(capsys, "gyt-spatial", "--predictions", files["plain"], "--benchmark-dir", bench,
                      "--mask-threshold", "0.5", "--mask-normalise", "none")
    default = run_score(capsys, "gyt-spatial", "--predictions", files["plain"], "--benchmark-dir", bench)
    assert ruled["mean_iou"] == flags["mean_iou"] != default["mean_iou"]


def test_the_rule_is_refused_where_no_scorer_reads_it(world, tmp_path, capsys):
    store, bench, *_ = world
    code = baselines.main(["centre", "--task", "gyt-spatial", "--benchmark-dir", str(bench), "--out",
                           str(tmp_path / "p.h5"), "--mask-rule", "cosine-0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --mask-rule")
    assert not (tmp_path / "p.h5").exists()


def test_an_unknown_recorded_rule_is_an_error():
    with pytest.raises(ScoreError, match="p.h5: metadata 'mask_rule'"):
        mask_options("paper", metadata={"mask_rule": {"name": "cosine-0.7"}}, path="p.h5")
    assert mask_options("paper", metadata={}).rule == MaskRule(0.01, True)
    assert json.dumps(mask_options("reference").named) == "null"
