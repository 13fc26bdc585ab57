"""Corrupted or blank stored features in evaluation: a NaN or infinite value is an error naming the store, the
video and the second (never a silent score), for the grounding tasks and for the COOT/WSRA store readers; an
all-zero row is a second that shows nothing: background, and kept out of the video's min-max range. Also
evaluation's fallback from a truncated newest checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval import run
from eval.feature_checks import CorruptFeaturesError, bad_rows, empty_rows
from eval.inference.config import TemporalConfig
from eval.inference.temporal import map_similarity
from eval.predictions import BACKGROUND, read_predictions
from eval.inference.config import load_infer_config
from eval.inference.queries import video_frames
from eval.inference.session import Session, StoreTexts
from pipeline.encoders import build_encoders
from pipeline.store import FeatureStore
from tests.eval.inference_helpers import (
    cell_box, identity_head, run_global_sim, save_run, unit, write_gyt_files, write_store,
)

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (320, 240)
ACTIONS = {"spin red circle": ((2, 5), (1, 5)), "move blue square": ((7, 9), (4, 2))}
SECONDS = 12


@pytest.fixture(scope="module")
def encoder():
    return build_encoders(["clip"], "tiny", resize="squash", device="cpu")["clip"]


def _positive_features(encoder) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose cosine with both action texts is positive everywhere (as frozen CLIP cosines are): action
    frames lean towards their own text, the others towards neither. A blank (cosine 0) row then lies below the
    video's whole similarity range."""
    sentence = unit(encoder.encode_text(list(ACTIONS))["sentence"].astype(np.float64))
    middle = unit(sentence.sum(0))
    other = np.random.default_rng(0).normal(size=middle.shape)
    other -= sentence.T @ np.linalg.lstsq(sentence.T, other, rcond=None)[0]  # orthogonal to both texts
    global_ = np.tile(unit(middle + 0.3 * unit(other)), (SECONDS, 1))
    for k, ((a, b), _) in enumerate(ACTIONS.values()):
        global_[a:b + 1] = unit(middle + 2.0 * sentence[k])
    assert (global_ @ sentence.T > 0.05).all()
    grid = np.tile(global_[:, None, None, :], (1, 7, 7, 1))
    return global_.astype(np.float16), grid.astype(np.float16)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    steps = [(label, a, b, cell_box(r, c, SIZE)) for label, ((a, b), (r, c)) in ACTIONS.items()]
    return write_gyt_files(tmp_path_factory.mktemp("bench"), {"vid-a": {"size": SIZE, "steps": steps}})


def _labels(capsys, tmp_path, encoder, bench, name, global_, grid) -> np.ndarray:
    store = str(tmp_path / f"{name}.zarr")
    write_store(store, encoder.spec, {"vid-a": (global_, grid)})
    out = tmp_path / f"{name}.h5"
    run_global_sim(capsys, "--task", "gyt", "--out", out, "--store", store, "--benchmark-dir", bench,
                   "--no-progress", "device=cpu")
    pred = read_predictions(out).temporal["vid-a"]
    return np.array(pred.labels, dtype=object)[pred.predicted()]


def test_a_blank_second_is_background_and_leaves_the_others_alone(encoder, bench, tmp_path, capsys):
    global_, grid = _positive_features(encoder)
    clean = _labels(capsys, tmp_path, encoder, bench, "clean", global_, grid)
    assert (clean[[2, 3, 4, 5]] == "spin red circle").all() and (clean[[0, 1, 6, 10, 11]] == BACKGROUND).all()
    for second in (4, 11):  # inside an action, and in the background
        g, m = global_.copy(), grid.copy()
        g[second], m[second] = 0, 0
        blank = _labels(capsys, tmp_path, encoder, bench, f"blank{second}", g, m)
        assert blank[second] == BACKGROUND
        keep = np.arange(SECONDS) != second
        assert (blank[keep] == clean[keep]).all()


def test_min_max_ignores_blank_rows_and_never_divides_zero_by_zero():
    cfg = TemporalConfig(mapping="minmax")
    sim = np.array([[0.2, 0.3], [0.0, 0.0], [0.3, 0.2]])
    blank = np.array([False, True, False])
    out = map_similarity(sim, cfg, "cosine", blank)
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    for mapping in ("minmax", "softmax", "affine", "raw"):
        cfg = TemporalConfig(mapping=mapping)
        assert np.isfinite(map_similarity(np.zeros((3, 2)), cfg, "cosine", np.ones(3, bool))).all()
        constant = map_similarity(np.full((3, 2), 0.25), cfg, "cosine")
        assert np.isfinite(constant).all() and (constant == constant[0, 0]).all()
    assert (map_similarity(np.full((3, 2), 0.25), TemporalConfig(mapping="minmax"), "cosine") == 0).all()
    assert (map_similarity(sim, TemporalConfig(mapping="raw"), "dot", blank)[1] == 0.2).all()


def test_feature_checks_find_bad_and_blank_rows():
    x = np.ones((600, 3, 2), np.float16)
    x[300, 1, 0], x[599, 0, 1] = np.nan, np.inf
    assert bad_rows(x).tolist() == [300, 599] and bad_rows(np.zeros((0, 4), np.float16)).tolist() == []
    y = np.ones((600, 4), np.float16)
    y[7] = 0
    x[9] = 0
    assert np.flatnonzero(empty_rows(y, x)).tolist() == [7, 9]


def test_nan_features_stop_the_evaluation_naming_store_video_and_second(encoder, bench, tmp_path, capsys,
                                                                         monkeypatch):
    global_, grid = _positive_features(encoder)
    store = str(tmp_path / "store.zarr")
    write_store(store, encoder.spec, {"vid-a": (global_, grid)})
    run_dir = save_run(tmp_path / "run", identity_head(encoder.spec["dims"]["grid"]), encoder.spec)
    args = ["gyt", "--run", str(run_dir), "--store", store, "--benchmark-dir", str(bench), "--no-progress",
            "device=cpu", "--out-dir", str(tmp_path / "eval")]
    assert run.main(args) == 0
    capsys.readouterr()
    frames = FeatureStore.frames

    def corrupt(self, video_id, *a, **k):
        data = frames(self, video_id, *a, **k)
        data["global"] = data["global"].copy()
        data["global"][4, 0] = np.nan  # old behaviour: NaN through min-max, the whole video background
        return data

    monkeypatch.setattr(FeatureStore, "frames", corrupt)
    assert run.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert store in err and "'vid-a'" in err and "second 4" in err and "NaN or infinite" in err


def test_evaluation_falls_back_from_a_truncated_checkpoint(encoder, bench, tmp_path, capsys):
    """eval.run on a run directory whose newest checkpoint is truncated uses the previous one and says so."""
    global_, grid = _positive_features(encoder)
    store = str(tmp_path / "store.zarr")
    write_store(store, encoder.spec, {"vid-a": (global_, grid)})
    head = identity_head(encoder.spec["dims"]["grid"])
    run_dir = save_run(tmp_path / "run", head, encoder.spec, step=1)
    newest = save_run(run_dir, head, encoder.spec, step=2) / "checkpoints" / "step-00000002.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    args = ["gyt", "--run", str(run_dir), "--store", store, "--benchmark-dir", str(bench), "--no-progress",
            "device=cpu", "--out-dir", str(tmp_path / "eval")]
    assert run.main(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["run"]["step"] == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"warning: {newest}: unreadable checkpoint")
    assert err.strip().endswith("; falling back to step-00000001.pt")


class _FakeStore:
    """What the timed-query inference reads of a store (frames, stored captions), serving one video's rows."""

    root = "fake.zarr"

    def __init__(self, frame_global: np.ndarray, sentence: np.ndarray):
        self.global_, self.sentence = frame_global, sentence

    def frames(self, video_id, encoder, fps=None, fields=None):
        return {"times": np.arange(len(self.global_), dtype=np.float64), "global": self.global_}

    def captions(self, video_id, encoder):
        n = len(self.sentence)
        return {"caption_id": np.array([f"{video_id}:step:{i}" for i in range(n)], dtype=object),
                "start": [float(2 * i) for i in range(n)], "end": [float(2 * i + 1) for i in range(n)],
                "text": np.array([f"step {i}" for i in range(n)], dtype=object),
                "kind": np.array(["step"] * n, dtype=object), "sentence": self.sentence,
                "words": np.ones((n, 3, 4), np.float16), "mask": np.ones((n, 3), bool)}


def _session(store) -> Session:
    return Session(store, "clip", None, StoreTexts(store, "clip"), None, load_infer_config(), ())


def test_timed_query_inference_refuses_nan_frames_and_stored_captions():
    frames, sentence = np.ones((5, 4), np.float16), np.ones((3, 4), np.float16)
    good = _session(_FakeStore(frames, sentence))
    assert len(video_frames(good, "v")[0]) == 5 and good.texts(["step 1"], ["v"]).sentence.shape == (1, 4)
    frames[3, 1] = np.inf
    with pytest.raises(CorruptFeaturesError, match=r"fake\.zarr: video 'v': clip global .* at second 3 "):
        video_frames(_session(_FakeStore(frames, sentence)), "v")
    sentence[1, 0] = np.nan
    with pytest.raises(CorruptFeaturesError, match=r"fake\.zarr: video 'v': .*caption v:step:1 \(starting at "
                                                   r"second 2\)"):
        _session(_FakeStore(frames, sentence)).texts(["step 0"], ["v"])
