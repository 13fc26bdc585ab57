"""COOT and WSRA inference end to end on a generated store: train tiny runs (and untrained ones, lr 0), write
retrieval / moment / per-second predictions from the runs and the store, score them against annotation files
made from the store's known events. Trained runs must beat their untrained selves."""
import json

import numpy as np
import pytest
import torch

from eval.moments_inference import ProposalConfig, chance_moments, infer_moments, infer_temporal, label_scores, windows
from eval.retrieval_inference import infer_retrieval
from eval.store_queries import RankedInferenceError
from tests.eval.helpers import run_score
from trainer.synthetic import SyntheticSpec, write_synthetic_store
from trainer.train import main

QUIET = ["runtime.progress=false", "runtime.checkpoint_every=1000", "optim.max_steps=60"]
PROPOSALS = ProposalConfig(lengths=(2, 3, 4, 6), relative=False)


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_benchmarks(root, truth) -> None:
    """YouCook2- and MiningYouTube-style files of the events: query id = the caption's number."""
    db, srt = {}, {}
    for cid, (vid, start, end, *_, concept) in sorted(truth.events.items()):
        db.setdefault(vid, {"duration": 40.0, "subset": "validation", "recipe_type": "x", "video_url": "",
                            "annotations": []})
        db[vid]["annotations"].append({"segment": [start, end], "id": int(cid.split(":")[1]),
                                       "sentence": f"concept {concept}"})
        srt.setdefault(vid, []).append(f"{len(srt.get(vid, [])) + 1}\n{srt_time(start)} --> {srt_time(end)}\n"
                                       f"concept {concept}\n")
    (root / "youcook2_interactions").mkdir(parents=True)
    (root / "youcook2_interactions" / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    (root / "miningyoutube" / "annotations").mkdir(parents=True)
    for vid, blocks in srt.items():
        (root / "miningyoutube" / "annotations" / f"{vid}.srt").write_text("\n".join(blocks))
    labels = sorted({f"concept {c}" for *_, c in truth.events.values()}) + ["background"]
    (root / "miningyoutube" / "weakYouTube_dict.txt").write_text("\n".join(labels) + "\n")
    (root / "miningyoutube" / "weakYouTube_length.txt").write_text("\n".join(["90"] * len(labels)) + "\n")


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


def test_retrieval_from_a_trained_coot_run(world, tmp_path, capsys):
    store, bench, runs = world
    results = {}
    for trained in (True, False):
        out = tmp_path / f"r{trained}.h5"
        summary = infer_retrieval(runs["coot", trained], store, str(out), kinds=("narration",))
        assert summary["videos"] == 8 and summary["clips"] == 32 and summary["skipped"] == []
        results[trained] = run_score(capsys, "retrieval", "--predictions", out, "--benchmark-dir", bench,
                                     "--benchmark", "youcook2")
    got, base = results[True], results[False]
    assert got["clip_t2v_queries"] == 32 and got["video_v2t_queries"] == 8
    assert got["clip_t2v_r5"] > base["clip_t2v_r5"] + 20 and got["video_t2v_r1"] > base["video_t2v_r1"] + 20
    with pytest.raises(RankedInferenceError, match="a 'wsra' run"):
        infer_retrieval(runs["wsra", True], store, str(tmp_path / "x.h5"))


def test_moments_and_per_second_scores_from_a_trained_wsra_run(world, tmp_path, capsys):
    store, bench, runs = world
    moments, mining = {}, {}
    for trained in (True, False):
        out = tmp_path / f"m{trained}.h5"
        assert infer_moments(runs["wsra", trained], store, str(out), kinds=("narration",),
                             proposals=PROPOSALS)["queries"] == 32
        moments[trained] = run_score(capsys, "moments", "--predictions", out, "--benchmark-dir", bench,
                                     "--benchmark", "youcook2")
        out = tmp_path / f"t{trained}.h5"
        summary = infer_temporal(runs["wsra", trained], store, str(out), task="mining", kinds=("narration",))
        assert summary["videos"] == 8
        mining[trained] = run_score(capsys, "mining", "--predictions", out, "--benchmark-dir", bench)
    assert moments[True]["miou"] > moments[False]["miou"] + 0.03 and moments[True]["queries"] == 32
    with pytest.raises(RankedInferenceError, match="no video has timed captions of kinds"):
        infer_moments(runs["wsra", True], store, str(tmp_path / "none.h5"), kinds=("step",))
    assert not (tmp_path / "none.h5").exists()
    assert moments[True]["r5@0.5"] > moments[False]["r5@0.5"]
    chance = chance_moments(runs["wsra", True], store, str(bench), "youcook2", proposals=PROPOSALS)
    assert chance["queries"] == 32 and chance["expected_value"]
    assert moments[True]["miou"] > chance["miou"] and moments[True]["r1@0.5"] > chance["r1@0.5"]
    assert mining[True]["segments"] == 32 and mining[True]["iou"] > 0


def test_proposal_windows_and_per_second_rows():
    spans = windows(10, 1.0, ProposalConfig(lengths=(0.5,), overlap=0.8))
    assert spans.tolist() == [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9], [5, 10]]
    spans = windows(10, 2.0, ProposalConfig(lengths=(4.0, 30.0), relative=False, overlap=0.5))
    assert spans.tolist() == [[0, 2], [0, 10], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7], [6, 8], [7, 9], [8, 10]]
    phi = np.array([[0.25, 0.75, 0.5]])
    rows = label_scores(phi, np.array([0.0, 1.0, 3.0]), 1.0, 0.125)    # second 2 has no snippet
    assert rows.tolist() == [[0.25, 0.125], [0.75, 0.125], [0.0, 0.125], [0.5, 0.125]]
