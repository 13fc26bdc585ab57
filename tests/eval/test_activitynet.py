"""ActivityNet Captions retrieval (COOT's val1 protocol): the reader and manifest builder on a small file in the
published `val_1.json` format, its timed queries, the retrieval metrics with custom cutoffs against a slow
reference and hand cases, and `python -m eval.score retrieval --benchmark activitynet` end to end."""
import json

import numpy as np
import pytest

from eval import score
from eval.metrics.retrieval import both_directions, ranks, summarise
from eval.predictions import PredictionsMeta, PredictionsWriter
from eval.scorers.timed_queries import load_timed_queries
from manifests.benchmarks.activitynet import load_activitynet
from manifests.builders import build_activitynet
from manifests.errors import AnnotationError
from tests.eval.helpers import run_score

# As published: leading spaces in sentences, a span past the duration, one ending before it starts.
VAL_1 = {
    "v_uqiMw7tQ1Cc": {"duration": 55.15, "timestamps": [[0.28, 55.15], [13.79, 54.32]],
                      "sentences": ["A weight lifting tutorial is given.",
                                    "  The coach helps the guy in red with the proper body placement and lifting."]},
    "v_bXdq2zI1Ms0": {"duration": 73.1, "timestamps": [[0, 10.23], [10.6, 39.84], [38.01, 80.0]],
                      "sentences": [" Three men are standing on a mat.", " The man in front begins to do karate.",
                                    " The man demonstrates several moves."]},
    "v_FsS_NCZEfaI": {"duration": 127.97, "timestamps": [[64.51, 60.0]],
                      "sentences": [" A group of young children are in a gym."]},
}


@pytest.fixture
def bench(tmp_path):
    root = tmp_path / "benchmarks"
    (root / "activitynet").mkdir(parents=True)
    (root / "activitynet" / "val_1.json").write_text(json.dumps(VAL_1))
    return root


def test_reader_keeps_the_file_and_strips_sentences(bench):
    videos = load_activitynet(bench / "activitynet" / "val_1.json")
    assert list(videos) == list(VAL_1)
    karate = videos["v_bXdq2zI1Ms0"]
    assert karate.duration == 73.1 and [(s.index, s.start, s.end) for s in karate.sentences] == [
        (0, 0.0, 10.23), (1, 10.6, 39.84), (2, 38.01, 80.0)]
    assert karate.sentences[1].sentence == "The man in front begins to do karate."
    assert videos["v_FsS_NCZEfaI"].sentences[0].end == 60.0           # as written: before its start


def test_timed_queries_clip_spans_and_keep_every_sentence(bench):
    queries = load_timed_queries("activitynet", bench)
    got = [(q.clip_id, q.start, q.end) for q in queries]
    assert got == [("v_FsS_NCZEfaI/0", 64.51, 64.51),                   # end raised to the start
                   ("v_bXdq2zI1Ms0/0", 0.0, 10.23), ("v_bXdq2zI1Ms0/1", 10.6, 39.84),
                   ("v_bXdq2zI1Ms0/2", 38.01, 73.1),                   # clipped to the duration
                   ("v_uqiMw7tQ1Cc/0", 0.28, 55.15), ("v_uqiMw7tQ1Cc/1", 13.79, 54.32)]
    assert queries[0].text == "A group of young children are in a gym."


def test_manifest_builder_numbers_captions_as_the_queries(bench, tmp_path):
    (tmp_path / "videos").mkdir()
    draft = build_activitynet(bench / "activitynet" / "val_1.json", tmp_path / "videos")
    assert draft.purpose == "eval" and sorted(s.video_id for s in draft.sources) == sorted(VAL_1)
    ids = {c.caption_id: c.text for c in draft.captions}
    for q in load_timed_queries("activitynet", bench):            # text.source=store finds each query's caption
        assert ids[f"{q.video_id}:sentence:{q.query_id}"] == q.text
    assert all(c.kind == "sentence" for c in draft.captions) and len(draft.captions) == 6


@pytest.mark.parametrize("entry,problem", [
    ({"duration": 5.0, "timestamps": [[0, 1]], "sentences": ["a", "b"]}, "1 timestamps but 2 sentences"),
    ({"duration": 5.0, "timestamps": [[0, 1, 2]], "sentences": ["a"]}, "expected [start, end]"),
    ({"duration": 5.0, "timestamps": [[0, "x"]], "sentences": ["a"]}, "expected a number"),
    ({"timestamps": [[0, 1]], "sentences": ["a"]}, "missing key 'duration'"),
    ({"duration": 5.0, "timestamps": [], "sentences": []}, "no sentence"),
])
def test_malformed_files_are_refused_naming_file_and_key(tmp_path, entry, problem):
    path = tmp_path / "val_1.json"
    path.write_text(json.dumps({"v_a": entry}))
    with pytest.raises(AnnotationError, match="v_a") as err:
        load_activitynet(path)
    assert problem in str(err.value) and str(path) in str(err.value)


# ---- metrics: a slow reference (every pair compared in Python) ------------------------------------------------
def slow_rank(row, positive):
    """1 + the candidates other than the correct one scoring at least as high (paper protocol)."""
    if positive < 0:
        return len(row) + 1
    return 1 + sum(1 for j, s in enumerate(row) if j != positive and s >= row[positive])


def slow_summary(rank_list, ks):
    out = {f"r{k}": 100.0 * sum(1 for r in rank_list if r <= k) / len(rank_list) for k in ks}
    ordered = sorted(rank_list)
    n = len(ordered)
    out["medr"] = float(ordered[n // 2]) if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    out["meanr"] = sum(rank_list) / n
    return out


@pytest.mark.parametrize("seed", range(6))
def test_ranks_and_recalls_match_the_slow_reference_with_custom_cutoffs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 70))
    scores = rng.integers(0, 4, (n, n)).astype(float)          # many ties
    positive = np.arange(n)
    positive[rng.random(n) < 0.1] = -1                         # some absent correct candidates
    ks = tuple(sorted(set(int(k) for k in rng.integers(1, 60, 3))))
    slow_t2v = [slow_rank(list(scores[i]), positive[i]) for i in range(n)]
    assert ranks(scores, positive).tolist() == slow_t2v
    got = both_directions(scores, positive, positive, ks=ks)
    slow_v2t = [slow_rank(list(scores[:, j]), positive[j]) for j in range(n)]
    for direction, slow in (("t2v", slow_t2v), ("v2t", slow_v2t)):
        want = slow_summary(slow, ks)
        assert set(got[direction]) == {f"r{k}" for k in ks} | {"medr", "meanr", "queries"}
        for key, value in want.items():
            assert got[direction][key] == pytest.approx(value), (direction, key)


def test_hand_cases_at_activitynet_cutoffs():
    # 4 paragraphs x 4 videos: ranks 1, 2 (one tie counts against), 4, and 5 (absent video)
    scores = np.array([[0.9, 0.1, 0.2, 0.3],
                       [0.5, 0.5, 0.1, 0.0],
                       [0.9, 0.8, 0.1, 0.7],
                       [0.1, 0.2, 0.3, 0.4]])
    r = ranks(scores, np.array([0, 1, 2, -1]))
    assert r.tolist() == [1, 2, 4, 5]
    out = summarise(r, ks=(1, 5, 50))
    assert (out["r1"], out["r5"], out["r50"], out["medr"]) == (25.0, 100.0, 100.0, 3.0)
    assert summarise(r, ks=(2, 3)) == {"r2": 50.0, "r3": 50.0, "medr": 3.0, "meanr": 3.0, "queries": 4}
    assert summarise(r, "reference", ks=(4,))["medr"] == 3.0          # floor(median of 0-based ranks 0,1,3,4) + 1
    for bad in [(), (0,), (1, 1), (2.5,)]:
        with pytest.raises(ValueError, match="cutoffs"):
            summarise(r, ks=bad)


# ---- end to end ---------------------------------------------------------------------------------------------
def write_predictions(path, video_scores, clip_ids, video_ids):
    with PredictionsWriter(path, PredictionsMeta("retrieval", "test")) as w:
        w.add_retrieval("clip", clip_ids, clip_ids, np.eye(len(clip_ids)))
        w.add_retrieval("video", video_ids, video_ids, video_scores)


def test_score_activitynet_paragraph_level_at_1_5_50(bench, tmp_path, capsys):
    queries = load_timed_queries("activitynet", bench)
    clip_ids = [q.clip_id for q in queries]
    video_ids = sorted({q.video_id for q in queries})
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, (3, 3)).astype(float)
    path = tmp_path / "p.h5"
    write_predictions(path, scores, clip_ids, video_ids)
    base = ["retrieval", "--predictions", path, "--benchmark-dir", bench, "--benchmark", "activitynet"]
    out = run_score(capsys, *base)
    assert out["levels"] == ["video"] and out["unscored_levels"] == ["clip"] and out["ranks"] == [1, 5, 50]
    assert not any(k.startswith("clip_") for k in out)
    t2v = slow_summary([slow_rank(list(scores[i]), i) for i in range(3)], (1, 5, 50))
    v2t = slow_summary([slow_rank(list(scores[:, j]), j) for j in range(3)], (1, 5, 50))
    for key, value in t2v.items():
        assert out[f"video_t2v_{key}"] == pytest.approx(value)
    for key, value in v2t.items():
        assert out[f"video_v2t_{key}"] == pytest.approx(value)
    custom = run_score(capsys, *base, "--ranks", "1,2", "levels=[clip,video]")
    assert custom["ranks"] == [1, 2] and custom["clip_t2v_r1"] == 100.0 and "video_t2v_r2" in custom
    assert "video_t2v_r50" not in custom and custom["unscored_levels"] == []


def test_score_refuses_bad_cutoffs_and_missing_videos(bench, tmp_path, capsys):
    queries = load_timed_queries("activitynet", bench)
    clip_ids = [q.clip_id for q in queries]
    path = tmp_path / "p.h5"
    write_predictions(path, np.eye(2), clip_ids, ["v_FsS_NCZEfaI", "v_bXdq2zI1Ms0"])   # one video absent
    base = ["retrieval", "--predictions", str(path), "--benchmark-dir", str(bench), "--benchmark", "activitynet"]
    assert score.main(base) == 2
    assert "v_uqiMw7tQ1Cc" in capsys.readouterr().err
    out = run_score(capsys, *base, "--missing", "miss")
    assert out["video_t2v_queries"] == 3 and out["video_t2v_r1"] == pytest.approx(200 / 3)
    assert score.main(base + ["--ranks", "0,5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cutoffs" in err[0]
