"""`python -m eval.score moments|retrieval` on small annotation files of each benchmark format: oracle and wrong
predictions, missing items (fail or miss), extra items, refusals."""
import json

import numpy as np
import pytest

from eval import score
from eval.predictions import PredictionsMeta, PredictionsWriter
from eval.scorers.timed_queries import load_timed_queries
from tests.eval.helpers import run_score

# (video, query id, start, end, text) as each format writes them, and the interval the scorer must read
GYT = {"va": [([3, 7], 0, "spin red circle"), ([10, 12], 4, "lift blue square")], "vb": [([0, 5], 1, "shake")],
       "vc": [([9, 8], 2, "inverted")]}
YC2 = {"va": [([3.0, 8.0], 0, "spin it")], "vb": [([0.5, 6.5], 7, "shake it"), ([8.0, 9.5], 9, "stir")]}
MINING = {"va": [(3.0, 8.0, "spin_red_circle"), (10.0, 13.0, "lift_blue_square")], "vb": [(0.0, 6.0, "shake")]}


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


@pytest.fixture
def bench(tmp_path):
    root = tmp_path / "benchmarks"
    (root / "groundingyoutube").mkdir(parents=True)
    (root / "groundingyoutube" / "ground_seg_3to20.json").write_text(json.dumps(
        {v: [{"segment": s, "id": i, "sentence": t} for s, i, t in segs] for v, segs in GYT.items()}))
    (root / "youcook2_interactions").mkdir()
    db = {v: {"duration": 60.0, "subset": "validation", "recipe_type": "x", "video_url": "",
              "annotations": [{"segment": s, "id": i, "sentence": t} for s, i, t in segs]} for v, segs in YC2.items()}
    db["vtrain"] = {**db["va"], "subset": "training"}
    (root / "youcook2_interactions" / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    (root / "miningyoutube" / "annotations").mkdir(parents=True)
    for v, segs in MINING.items():
        blocks = [f"{k + 1}\n{srt_time(s)} --> {srt_time(e)}\n{label}\n" for k, (s, e, label) in enumerate(segs)]
        (root / "miningyoutube" / "annotations" / f"{v}.srt").write_text("\n".join(blocks))
    return root


def test_timed_queries_of_each_format(bench):
    gyt = load_timed_queries("gyt", bench)
    assert [(q.clip_id, q.start, q.end) for q in gyt] == [("va/0", 3, 8), ("va/4", 10, 13), ("vb/1", 0, 6)]
    yc2 = load_timed_queries("youcook2", bench)
    assert [(q.clip_id, q.start, q.end, q.text) for q in yc2] == [
        ("va/0", 3, 8, "spin it"), ("vb/7", 0.5, 6.5, "shake it"), ("vb/9", 8, 9.5, "stir")]
    mining = load_timed_queries("mining", bench)
    assert [(q.clip_id, q.start, q.end, q.text) for q in mining][1] == ("va/1", 10, 13, "lift_blue_square")


def write_moments(path, queries, shift: float = 0.0, drop: int = 0, extra: bool = False):
    with PredictionsWriter(path, PredictionsMeta("moments", "oracle")) as w:
        for q in queries[drop:]:
            w.add_moments(q.video_id, q.query_id, q.text, np.array([[q.start + shift, q.end + shift, 1.0],
                                                                    [q.start, q.end, 0.5]]))
        if extra:
            w.add_moments("vz", 0, "not in the benchmark", np.zeros((0, 3)))


@pytest.mark.parametrize("benchmark", ["gyt", "youcook2", "mining"])
def test_moments_oracle_shifted_and_missing(bench, tmp_path, capsys, benchmark):
    queries = load_timed_queries(benchmark, bench)
    path = tmp_path / "m.h5"
    write_moments(path, queries, extra=True)
    out = run_score(capsys, "moments", "--predictions", path, "--benchmark-dir", bench, "--benchmark", benchmark)
    assert out["r1@0.7"] == 100.0 and out["miou"] == 1.0 and out["queries"] == len(queries)
    assert out["extra_queries"] == 1 and out["missing_queries"] == []
    write_moments(path, queries, shift=100.0)                    # first proposal far off, the second exact
    out = run_score(capsys, "moments", "--predictions", path, "--benchmark-dir", bench, "--benchmark", benchmark,
                    "--ranks", "1,2", "--ious", "0.5")
    assert (out["r1@0.5"], out["r2@0.5"], out["miou"]) == (0.0, 100.0, 0.0)
    write_moments(path, queries, drop=1)
    assert score.main(["moments", "--predictions", str(path), "--benchmark-dir", str(bench), "--benchmark",
                       benchmark]) == 2
    assert "lack 1 queries" in capsys.readouterr().err
    out = run_score(capsys, "moments", "--predictions", path, "--benchmark-dir", bench, "--benchmark", benchmark,
                    "--missing", "miss")
    assert out["missing_queries"] == [queries[0].clip_id]
    assert out["r1@0.3"] == pytest.approx(100.0 * (len(queries) - 1) / len(queries))


def write_retrieval(path, clip_ids, video_ids, clip_scores=None, video_scores=None):
    with PredictionsWriter(path, PredictionsMeta("retrieval", "oracle")) as w:
        w.add_retrieval("clip", clip_ids, clip_ids, np.eye(len(clip_ids)) if clip_scores is None else clip_scores)
        w.add_retrieval("video", video_ids, video_ids,
                        np.eye(len(video_ids)) if video_scores is None else video_scores)


def test_retrieval_oracle_reversed_missing_and_extra(bench, tmp_path, capsys):
    queries = load_timed_queries("youcook2", bench)
    clips = [q.clip_id for q in queries]
    path = tmp_path / "r.h5"
    write_retrieval(path, clips + ["vz/0"], ["va", "vb"])
    args = ["retrieval", "--predictions", path, "--benchmark-dir", bench, "--benchmark", "youcook2"]
    out = run_score(capsys, *args)
    assert out["clip_t2v_r1"] == out["clip_v2t_r1"] == out["video_t2v_r1"] == 100.0 and out["clip_extra"] == 1
    assert out["clip_t2v_medr"] == 1 and out["clip_t2v_queries"] == 3
    reverse = np.fliplr(np.eye(3))                                # sentence i scores clip 2 - i highest
    write_retrieval(path, clips, ["va", "vb"], clip_scores=reverse + 0.5 * np.eye(3))
    out = run_score(capsys, *args)
    assert out["clip_t2v_r1"] == pytest.approx(100 / 3) and out["clip_t2v_medr"] == 2  # the middle one is right
    write_retrieval(path, clips[:2], ["va", "vb"])
    assert score.main([str(a) for a in args]) == 2
    out = run_score(capsys, *args, "--missing", "miss")
    assert out["clip_missing"] == [clips[2]] and out["clip_t2v_r1"] == pytest.approx(200 / 3)
    assert out["clip_t2v_meanr"] == pytest.approx((1 + 1 + 4) / 3)  # the absent one ranks after all 3
    out = run_score(capsys, "retrieval", "--predictions", path)          # no benchmark: the file's own ids
    assert out["clip_t2v_r1"] == 100.0 and out["clip_t2v_queries"] == 2


def test_refusals(bench, tmp_path, capsys):
    path = tmp_path / "m.h5"
    write_moments(path, load_timed_queries("gyt", bench))
    assert score.main(["moments", "--predictions", str(path), "--benchmark-dir", str(bench)]) == 2
    assert "needs --benchmark" in capsys.readouterr().err
    assert score.main(["retrieval", "--predictions", str(path)]) == 2
    assert "written for task 'moments', not 'retrieval'" in capsys.readouterr().err
    assert score.main(["mining", "--predictions", str(path)]) == 2
    assert "needs --benchmark-dir" in capsys.readouterr().err
