"""`make demo` end to end (python -m eval.drivers.demo with its defaults, seed 0, plus the Table 6 ablations): the
generated world, extraction with the tiny *random* encoders, training, evaluation on held-out videos against
the baselines, pictures. Learning must be real: the trained STG head beats the annotation-only priors by clear
margins, and its global-only / local-only ablations fall short of the full head as in the paper's Table 6."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from eval.drivers import compare, demo
from manifests.ffmpeg import probe
from tests.conftest import REPORTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(output folder, the summary JSON of the last stdout line, results.json, stdout)."""
    out = tmp_path_factory.mktemp("demo")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert demo.main(["--out", str(out), "--ablations"]) == 0
    stdout = text.getvalue()
    summary = json.loads(stdout.strip().splitlines()[-1])
    return out, summary, json.loads((out / "results.json").read_text()), stdout


def figure(summary, method, key):
    return summary["methods"][method][key]


def test_the_trained_head_beats_the_priors_by_clear_margins(run):
    _, s, _, _ = run
    pointing, temporal = "gyt-spatial/pointing_accuracy", "gyt/temporal_accuracy"
    assert figure(s, "stg", pointing) >= figure(s, "centre prior", pointing) + 10
    assert figure(s, "stg", pointing) >= 2 * figure(s, "uniform prior", pointing)
    assert figure(s, "stg", temporal) >= figure(s, "uniform prior", temporal) + 10
    assert figure(s, "stg", pointing) > figure(s, "global-sim (frozen)", pointing)   # learned, not frozen


def test_ablations_behave_as_table_6(run):
    """Spatio-temporal grounding needs both losses; the global loss carries the temporal detection, the local
    loss the spatial grounding."""
    _, s, _, _ = run
    st, pointing, temporal = "gyt/iou_pointing", "gyt-spatial/pointing_accuracy", "gyt/temporal_accuracy"
    assert figure(s, "stg", st) >= max(figure(s, "stg-global-only", st), figure(s, "stg-local-only", st))
    assert figure(s, "stg-global-only", pointing) < figure(s, "stg", pointing)
    assert figure(s, "stg-local-only", temporal) < figure(s, "stg", temporal)


def test_outputs_pictures_and_logs(run):
    out, s, full, stdout = run
    assert "randomly initialised" in stdout and "pointing %" in stdout       # said plainly, and the table
    assert (out / "results.md").read_text().startswith("| method |")
    assert set(full["metrics"]["stg"]) == {"gyt-spatial", "gyt", "mining"}
    for command in full["commands"]:                                          # each stage logged with its command
        assert command.startswith("python -m ")
    assert all(log.read_text().startswith("$ python -m ") for log in (out / "logs").glob("*.log"))
    pictures = [p.split("/")[-1] for p in s["pictures"]]
    assert sum(p.startswith("overlay-") and p.endswith(".png") for p in pictures) == 2
    assert sum(p.startswith("timeline-") for p in pictures) >= 1 and "curves.png" in pictures
    mp4 = next(p for p in s["pictures"] if p.endswith(".mp4"))
    video = probe(mp4)
    assert video.width > 0 and video.duration > 0 and (out / "pictures" / "curves.png").stat().st_size > 10_000
    timings = full["stage_seconds"]
    assert {"world", "extract-train", "extract-test", "train-stg"} <= set(timings)
    assert np.isfinite(list(timings.values())).all()
    main = ("world", "extract-train", "extract-test", "train-stg")
    REPORTS["make demo (python -m eval.drivers.demo --ablations)"] = (
        ", ".join(f"{k} {timings[k]:.0f} s" for k in main) + f"; all stages {s['seconds']:.0f} s")


def test_compare_trains_every_head_on_the_demo_stores(run, tmp_path):
    """`python -m eval.drivers.compare` on the stores the demo made (a short budget): one table, every method and
    baseline, the spatial, temporal, spatio-temporal, retrieval and moment columns."""
    out, _, _, _ = run
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert compare.main(["--out", str(tmp_path / "cmp"), "--steps", "40", "--train-store",
                             str(out / "stores" / "train.zarr"), "--test-store", str(out / "stores" / "test.zarr"),
                             "--benchmark-dir", str(out / "world" / "test" / "benchmarks")]) == 0
    summary = json.loads(text.getvalue().strip().splitlines()[-1])
    methods = summary["methods"]
    assert set(methods) == {"stg", "comma", "comma-paper", "coot", "coot-paper", "wsra", "wsra-paper",
                            "centre prior", "uniform prior", "global-sim (frozen)"}
    for row in ("comma", "comma-paper"):     # the released code's choices and the paper's, side by side
        assert {"gyt-spatial/pointing_accuracy", "gyt/iou_pointing", "mining/mof"} <= set(methods[row])
    for row in ("coot", "coot-paper"):
        assert set(methods[row]) == {"retrieval/clip_t2v_r1", "retrieval/video_t2v_r1"}
    for row in ("wsra", "wsra-paper"):
        assert set(methods[row]) == {"gyt/temporal_accuracy", "moments/r1@0.5", "moments/miou"}
    chance = methods["uniform prior"]                                # chance levels of both rankings
    assert {"retrieval/clip_t2v_r1", "moments/r1@0.5", "moments/miou"} <= set(chance)
    assert 0 < chance["moments/r1@0.5"] < 100 and 0 < chance["moments/miou"] < 1
    header = (tmp_path / "cmp" / "results.md").read_text().splitlines()[0]
    assert all(h in header for h in ("pointing %", "temporal %", "IoU+Pointing %", "t2v R@1 %", "R1@0.5 %"))
