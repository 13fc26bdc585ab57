"""COOT and WSRA through the one inference command on a generated store: train tiny runs (and untrained ones, lr 0),
write retrieval / moment / per-second predictions with `python -m eval.infer` (the texts' stored features:
text.source=store, as the generated store has no text encoder), score them against annotation files made from
the store's known events. Trained runs must beat their untrained selves."""
import json

import numpy as np
import pytest
import torch

from eval import infer
from eval.inference import load_infer_config, method_session
from eval.inference.config import MomentsConfig
from eval.inference.encoder import EncoderOptions
from eval.inference.moments import chance_moments, windows
from eval.inference.temporal import snippet_scores
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import write_benchmarks
from trainer.synthetic import SyntheticSpec, write_synthetic_store
from trainer.train import main

QUIET = ["runtime.progress=false", "runtime.checkpoint_every=1000", "optim.max_steps=60"]
# The generated store: 5 fps frames, narrations stored with their features; proposals of a few seconds.
SETTINGS = ["fps=5", "text.source=store", "moments.lengths=[2,3,4,6]", "moments.relative=false"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(store, benchmarks dir, {(head, trained): run dir})."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                             # the machine is shared
    tmp = tmp_path_factory.mktemp("ranked")
    store = str(tmp / "store.zarr")
    truth = write_synthetic_store(store, SyntheticSpec(videos=8, dim=16, block=4, seed=0))
    write_benchmarks(tmp / "bench", truth)
    runs = {}
    for head, lr in (("coot", 3e-3), ("wsra", 1e-2)):
        for trained in (True, False):
            out = tmp / f"{head}-{trained}"
            assert main(["--store", store, "--out", str(out), "--preset", f"{head}-tiny", *QUIET,
                         f"optim.lr={lr if trained else 0.0}"]) == 0
            runs[head, trained] = str(out)
    torch.set_num_threads(threads)
    return store, tmp / "bench", runs


def _infer(capsys, task, run, store, bench, out, *extra) -> dict:
    code = infer.main([task, "--run", run, "--store", store, "--benchmark-dir", str(bench), "--out", str(out),
                       "--no-progress", *extra, *SETTINGS])
    captured = capsys.readouterr()
    return {"code": code, "err": captured.err, **(json.loads(captured.out.splitlines()[-1]) if code == 0 else {})}


def test_retrieval_from_a_trained_coot_run(world, tmp_path, capsys):
    store, bench, runs = world
    results = {}
    for trained in (True, False):
        out = tmp_path / f"r{trained}.h5"
        summary = _infer(capsys, "retrieval", runs["coot", trained], store, bench, out, "--benchmark", "youcook2")
        assert summary["videos"] == 8 and summary["clips"] == 32 and summary["missing"] == {}
        results[trained] = run_score(capsys, "retrieval", "--predictions", out, "--benchmark-dir", bench,
                                     "--benchmark", "youcook2")
    got, base = results[True], results[False]
    assert got["clip_t2v_queries"] == 32 and got["video_v2t_queries"] == 8
    assert got["clip_t2v_r5"] > base["clip_t2v_r5"] + 20 and got["video_t2v_r1"] > base["video_t2v_r1"] + 20
    refused = _infer(capsys, "retrieval", runs["wsra", True], store, bench, tmp_path / "x.h5", "--benchmark", "gyt")
    assert refused["code"] == 2 and "wsra answers the tasks ['moments', 'gyt', 'mining'], not 'retrieval'" \
        in refused["err"] and not (tmp_path / "x.h5").exists()


def test_moments_and_per_second_scores_from_a_trained_wsra_run(world, tmp_path, capsys):
    store, bench, runs = world
    moments, mining = {}, {}
    for trained in (True, False):
        out = tmp_path / f"m{trained}.h5"
        assert _infer(capsys, "moments", runs["wsra", trained], store, bench, out,
                      "--benchmark", "youcook2")["queries"] == 32
        moments[trained] = run_score(capsys, "moments", "--predictions", out, "--benchmark-dir", bench,
                                     "--benchmark", "youcook2")
        out = tmp_path / f"t{trained}.h5"
        assert _infer(capsys, "mining", runs["wsra", trained], store, bench, out)["videos"] == 8
        mining[trained] = run_score(capsys, "mining", "--predictions", out, "--benchmark-dir", bench)
    assert moments[True]["miou"] > moments[False]["miou"] + 0.03 and moments[True]["queries"] == 32
    assert moments[True]["r5@0.5"] > moments[False]["r5@0.5"]
    refused = _infer(capsys, "moments", runs["wsra", True], store, bench, tmp_path / "none.h5")
    assert refused["code"] == 2 and "moments needs --benchmark" in refused["err"]
    refused = _infer(capsys, "mining", runs["wsra", True], store, bench, tmp_path / "none.h5", "temporal.source=global")
    assert refused["code"] == 2 and "wsra has no attention rollout" in refused["err"]  # a setting it cannot honour
    assert not (tmp_path / "none.h5").exists()
    cfg = load_infer_config(overrides=SETTINGS)
    chance = chance_moments(method_session(runs["wsra", True], store, cfg, EncoderOptions(), "fail"), "youcook2",
                            bench)
    assert chance["queries"] == 32 and chance["expected_value"]
    assert moments[True]["miou"] > chance["miou"] and moments[True]["r1@0.5"] > chance["r1@0.5"]
    assert mining[True]["segments"] == 32 and mining[True]["iou"] > 0


def test_proposal_windows_and_per_second_rows():
    spans = windows(10, 1.0, MomentsConfig(lengths=(0.5,), overlap=0.8))
    assert spans.tolist() == [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9], [5, 10]]
    spans = windows(10, 2.0, MomentsConfig(lengths=(4.0, 30.0), relative=False, overlap=0.5))
    assert spans.tolist() == [[0, 2], [0, 10], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7], [6, 8], [7, 9], [8, 10]]
    phi = np.array([[0.25, 0.75, 0.5]])
    rows = snippet_scores(phi, np.array([0.0, 1.0, 3.0]), 1.0)    # second 2 has no snippet
    assert rows.tolist() == [[0.25], [0.75], [0.0], [0.5]]
