"""Charades-STA and DiDeMo moment retrieval: the readers and manifest drafts on small files in the published
formats, the timed queries, the metrics against slow obvious references and hand cases (R@n at IoU m and mIoU;
DiDeMo's Rank@n and mIoU over its annotators), the proposals (Charades-STA's sliding windows, DiDeMo's 21
candidates), and predictions files scored end to end (and written by `eval.infer` from a short wsra run)."""
import itertools
import json

import numpy as np
import pytest
import torch

from eval import infer, score
from eval.inference.config import MomentsConfig, load_infer_config
from eval.inference.moments import rank_didemo, windows
from eval.metrics.moments import didemo_metrics, moment_metrics, seconds_to_segments, segment_iou
from eval.predictions import PredictionsMeta, PredictionsWriter, read_predictions
from eval.scorers.timed_queries import BENCHMARKS, load_timed_queries
from manifests.benchmarks.charades_sta import build_charades_sta, load_charades_sta
from manifests.benchmarks.didemo import CANDIDATES, build_didemo, consensus, load_didemo
from manifests.errors import AnnotationError
from tests.eval.helpers import run_score
from trainer.synthetic import SyntheticSpec, write_synthetic_store
from trainer.train import main as train_main

CHARADES = ("3MSZA 24.3 30.4##person turn a light on.\n"
            "3MSZA 0.0 7.5##person opens the door.\n"
            "AO8RW 12.0 19.6##a person is putting a book on a shelf.\n"
            "AO8RW 5.0 5.0##zero length.\n"
            "Y6R7T 1.5 12.25##person sitting in a chair eating.\n")
DIDEMO = [
    {"video": "12090392@N02_13482799053_87ef417396.mov", "times": [[0, 0], [0, 0], [0, 0], [1, 1]],
     "description": "a dog runs in", "annotation_id": 7, "dl_link": "https://example.invalid/a", "num_segments": 6,
     "train_times": [[0, 0]]},
    {"video": "12090392@N02_13482799053_87ef417396.mov", "times": [[2, 3], [2, 4], [3, 4], [2, 3]],
     "description": "the dog jumps", "annotation_id": 3, "dl_link": "", "num_segments": 6},
    {"video": "10015567@N08_3655084291_d8b7d4a6a4.mp4", "times": [[5, 5], [4, 5], [0, 5], [5, 5]],
     "description": "the camera pans away", "annotation_id": 11, "dl_link": "", "num_segments": 6},
]


@pytest.fixture
def bench(tmp_path):
    root = tmp_path / "benchmarks"
    (root / "charades_sta").mkdir(parents=True)
    (root / "charades_sta" / "charades_sta_test.txt").write_text(CHARADES)
    (root / "didemo").mkdir()
    (root / "didemo" / "test_data.json").write_text(json.dumps(DIDEMO))
    return root


# ---- readers, drafts, timed queries ---------------------------------------------------------------------------

def test_charades_reader_draft_and_timed_queries(bench, tmp_path):
    path = bench / "charades_sta" / "charades_sta_test.txt"
    by_video = load_charades_sta(path)
    assert list(by_video) == ["3MSZA", "AO8RW", "Y6R7T"]
    assert [(q.index, q.start, q.end, q.sentence, q.line) for q in by_video["3MSZA"]] == [
        (0, 24.3, 30.4, "person turn a light on.", 1), (1, 0.0, 7.5, "person opens the door.", 2)]
    (tmp_path / "videos").mkdir()
    draft = build_charades_sta(path, tmp_path / "videos")
    assert draft.purpose == "eval" and [s.video_id for s in draft.sources] == ["3MSZA", "AO8RW", "Y6R7T"]
    assert [c.caption_id for c in draft.captions][:3] == ["3MSZA:query:0", "3MSZA:query:1", "AO8RW:query:0"]
    assert draft.captions[4].start == 1.5 and draft.captions[4].end == 12.25
    queries = load_timed_queries("charades-sta", bench)           # the zero-length span has no IoU: left out
    assert [(q.clip_id, q.start, q.end) for q in queries] == [
        ("3MSZA/1", 0.0, 7.5), ("3MSZA/0", 24.3, 30.4), ("AO8RW/0", 12.0, 19.6), ("Y6R7T/0", 1.5, 12.25)]
    assert {"charades-sta", "didemo"} <= set(BENCHMARKS)


@pytest.mark.parametrize("line,problem", [
    ("3MSZA 24.3 30.4 person turn a light on.", "expected '<video> <start> <end>##<sentence>'"),
    ("3MSZA 24.3##person", "expected '<video> <start> <end>' before '##'"),
    ("3MSZA x 30.4##person", "start time 'x' is not a number"),
    ("3MSZA 1 nan##person", "end time 'nan' must be a finite number >= 0"),
    ("3MSZA -1 3##person", "start time '-1' must be a finite number >= 0"),
    ("3MSZA 1 3##   ", "empty sentence"),
])
def test_charades_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = tmp_path / "charades_sta_test.txt"
    path.write_text("AO8RW 12.0 19.6##fine.\n" + line + "\n")
    with pytest.raises(AnnotationError, match="line 2") as err:
        load_charades_sta(path)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_charades_bad_file_exits_2_from_the_scorer(bench, tmp_path, capsys):
    (bench / "charades_sta" / "bad.txt").write_text("3MSZA 1 2 person\n")
    path = tmp_path / "m.h5"
    with PredictionsWriter(path, PredictionsMeta("moments", "x")) as w:
        w.add_moments("3MSZA", 0, "q", np.array([[0.0, 1.0, 1.0]]))
    assert score.main(["moments", "--predictions", str(path), "--benchmark-dir", str(bench), "--benchmark",
                       "charades-sta", "--annotations", "bad.txt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.txt" in err[0] and "line 1" in err[0]


def test_didemo_reader_draft_consensus_and_timed_queries(bench, tmp_path):
    path = bench / "didemo" / "test_data.json"
    queries = load_didemo(path)
    assert [(q.annotation_id, q.times) for q in queries][1] == (3, ((2, 3), (2, 4), (3, 4), (2, 3)))
    assert [consensus(q.times) for q in queries] == [(0, 0), (2, 3), (5, 5)]
    assert consensus(((1, 2), (0, 0), (0, 0), (1, 2))) == (1, 2)          # a tie: the one written first
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / f"{DIDEMO[0]['video']}.mp4").write_bytes(b"")   # <video>.<ext>: the id keeps .mov
    draft = build_didemo(path, tmp_path / "videos")
    assert [s.video_id for s in draft.sources] == [DIDEMO[0]["video"], DIDEMO[2]["video"]]
    assert draft.sources[0].path == str(tmp_path / "videos" / f"{DIDEMO[0]['video']}.mp4")
    assert [(c.caption_id.rsplit(":", 2)[1:], c.start, c.end) for c in draft.captions] == [
        (["query", "7"], 0.0, 5.0), (["query", "3"], 10.0, 20.0), (["query", "11"], 25.0, 30.0)]
    timed = load_timed_queries("didemo", bench)
    assert [(q.query_id, q.start, q.end) for q in timed] == [       # by video id, then start
        ("11", 25.0, 30.0), ("7", 0.0, 5.0), ("3", 10.0, 20.0)]
    assert timed[2].times == ((10.0, 20.0), (10.0, 25.0), (15.0, 25.0), (10.0, 20.0))


@pytest.mark.parametrize("change,problem", [
    ({"times": [[0, 6]]}, "outside 0 <= first <= last <= 5"),
    ({"times": [[3, 2]]}, "outside 0 <= first <= last <= 5"),
    ({"times": [[0]]}, "expected [first, last] segment"),
    ({"times": []}, "no annotator's times"),
    ({"times": [[0, 1.5]]}, "expected an integer"),
    ({"annotation_id": 3}, "already used by entry [1]"),
    ({"description": " "}, "empty description"),
])
def test_didemo_bad_entries_name_file_and_key(tmp_path, change, problem):
    path = tmp_path / "val_data.json"
    path.write_text(json.dumps([DIDEMO[0], DIDEMO[1], {**DIDEMO[2], **change}]))
    with pytest.raises(AnnotationError) as err:
        load_didemo(path)
    assert problem in str(err.value) and str(path) in str(err.value) and "[2]" in str(err.value)


# ---- metrics ----------------------------------------------------------------------------------------------------

def slow_recall(proposals, truths, n, m):
    hits = 0
    for props, (gs, ge) in zip(proposals, truths):
        for s, e, *_ in list(props)[:n]:
            inter = max(0.0, min(e, ge) - max(s, gs))
            if inter / (max(e, ge) - min(s, gs)) >= m - 1e-12:   # overlapping here, so the hull is the union
                hits += 1
                break
    return 100.0 * hits / len(truths)


def slow_miou(proposals, truths):
    total = 0.0
    for props, (gs, ge) in zip(proposals, truths):
        if len(props):
            s, e = props[0][0], props[0][1]
            inter = max(0.0, min(e, ge) - max(s, gs))
            total += inter / ((e - s) + (ge - gs) - inter)
    return total / len(truths)


def test_charades_metrics_against_a_slow_reference_and_by_hand():
    rng = np.random.default_rng(0)
    truths = [tuple(sorted(rng.uniform(0, 30, 2))) for _ in range(60)]
    proposals = []
    for _ in truths:
        s = rng.uniform(0, 25, rng.integers(0, 8))
        proposals.append(np.stack([s, s + rng.uniform(0.5, 10, len(s)), -np.arange(len(s))], 1))
    got = moment_metrics(proposals, truths)
    for n, m in itertools.product((1, 5), (0.3, 0.5, 0.7)):
        assert got[f"r{n}@{m:g}"] == pytest.approx(slow_recall(proposals, truths, n, m))
    assert got["miou"] == pytest.approx(slow_miou(proposals, truths)) and got["queries"] == 60
    # by hand: truth [10, 20); top-1 [10, 15) (IoU 0.5), second [12, 20) (IoU 0.8); no proposals -> 0
    hand = moment_metrics([np.array([[10, 15, 1], [12, 20, 0.5]]), np.zeros((0, 3))], [(10, 20), (0, 5)])
    assert (hand["r1@0.5"], hand["r1@0.7"], hand["r5@0.7"], hand["miou"]) == (50.0, 0.0, 50.0, 0.25)


def slow_didemo(ranked, times):
    """The published definition spelled out: sets of segments for the IoU, list positions for the ranks."""
    r1 = r5 = iou_sum = 0.0
    for order, gts in zip(ranked, times):
        ranks = []
        for g in gts:
            ranks.append(next((k + 1 for k, c in enumerate(order) if tuple(c) == tuple(g)), float("inf")))
        ranks.sort()
        mean_rank = sum(ranks[:3]) / len(ranks[:3])
        ious = []
        for g in gts:
            if not order:
                ious.append(0.0)
                continue
            a, b = set(range(order[0][0], order[0][1] + 1)), set(range(g[0], g[1] + 1))
            ious.append(len(a & b) / len(a | b))
        ious.sort()
        iou_sum += sum(ious[-3:]) / len(ious[-3:])
        r1 += mean_rank <= 1
        r5 += mean_rank <= 5
    n = len(ranked)
    return 100 * r1 / n, 100 * r5 / n, iou_sum / n


def test_didemo_candidates_and_metrics_against_a_slow_reference():
    every = {(s, e) for s in range(6) for e in range(6) if s <= e}
    assert len(CANDIDATES) == 21 and set(CANDIDATES) == every
    rng = np.random.default_rng(1)
    ranked, times = [], []
    for q in range(200):
        order = [CANDIDATES[k] for k in rng.permutation(21)][: [21, 21, 5, 0][q % 4]]
        ranked.append(order)
        base = CANDIDATES[rng.integers(21)]
        times.append([base if rng.random() < 0.6 else CANDIDATES[rng.integers(21)] for _ in range(4)])
    got = didemo_metrics(ranked, times)
    r1, r5, miou = slow_didemo(ranked, times)
    assert (got["r1"], got["r5"], got["miou"], got["queries"]) == (pytest.approx(r1), pytest.approx(r5),
                                                                    pytest.approx(miou), 200)
    assert 0 < got["r1"] < got["r5"] < 100


def test_didemo_metrics_by_hand():
    full = list(CANDIDATES)
    # 3 of 4 annotators chose (0, 0), ranked first: ranks [1, 1, 1, k] -> mean of the best 3 = 1 -> Rank@1
    first = [(0, 0)] + [c for c in full if c != (0, 0)]
    one = didemo_metrics([first], [[(0, 0), (0, 0), (0, 0), (1, 1)]])
    assert (one["r1"], one["r5"], one["miou"]) == (100.0, 100.0, 1.0)
    # 2 of 4 chose it, 2 chose (1, 1), ranked 7th: ranks [1, 1, 7, 7] -> mean of the best 3 = 3 -> Rank@5 only
    order = [(0, 0)] + [c for c in full if c not in ((0, 0), (1, 1))][:5] + [(1, 1)] + \
        [c for c in full if c not in ((0, 0), (1, 1))][5:]
    assert order.index((1, 1)) == 6
    two = didemo_metrics([order], [[(0, 0), (0, 0), (1, 1), (1, 1)]])
    assert (two["r1"], two["r5"]) == (0.0, 100.0)
    assert two["miou"] == pytest.approx((1 + 1 + 0) / 3)                # IoUs [1, 1, 0, 0]: the worst one dropped
    # top-1 (0, 0) against (0, 1), (2, 2), (3, 3), (4, 4): IoUs [1/2, 0, 0, 0] -> (0 + 0 + 1/2) / 3
    assert didemo_metrics([first], [[(0, 1), (2, 2), (3, 3), (4, 4)]])["miou"] == pytest.approx(1 / 6)
    assert segment_iou((1, 3), (2, 5)) == pytest.approx(2 / 5) and segment_iou((0, 1), (3, 4)) == 0.0
    assert seconds_to_segments(np.array([[10.0, 20.0, 1.0], [0.0, 30.0, 0.5]])) == [(2, 3), (0, 5)]
    for bad in ([[10.0, 21.0, 1.0]], [[0.0, 35.0, 1.0]], [[2.5, 5.0, 1.0]]):
        with pytest.raises(ValueError, match="not a DiDeMo candidate"):
            seconds_to_segments(np.array(bad))


# ---- proposals --------------------------------------------------------------------------------------------------

def test_charades_sliding_windows_are_the_papers():
    cfg = load_infer_config(preset="charades-sta").moments
    assert (cfg.lengths, cfg.relative, cfg.overlap, cfg.top, cfg.nms) == ((0.2, 0.3, 0.4, 0.5), True, 0.8, 5, 1.0)
    spans = windows(30, 1.0, cfg)
    # sizes 6, 9, 12, 15 snippets; strides round(size x 0.2) = 1, 2, 2, 3; a last window ends at the end
    expected = {(s, s + 6) for s in range(25)} | {(s, s + 9) for s in [*range(0, 22, 2), 21]} | \
        {(s, s + 12) for s in range(0, 19, 2)} | {(s, s + 15) for s in range(0, 16, 3)}
    assert {tuple(w) for w in spans} == expected and len(spans) == 25 + 12 + 10 + 6


def test_didemo_proposals_score_the_21_candidates():
    starts = np.arange(22.0)                                            # a 22-s video: segment 5 is empty
    alpha = np.zeros(22)
    alpha[10:15] = 0.15                                                 # attention on segment 2
    alpha[15:20] = 0.05
    props = rank_didemo(alpha, starts, starts + 1, MomentsConfig())
    assert props.shape == (21, 3) and np.all(np.diff(props[:, 2]) <= 0)
    assert tuple(props[0, :2]) == (10.0, 15.0) and props[0, 2] == pytest.approx(0.15)
    by_span = {(float(s), float(e)): float(v) for s, e, v in props}
    assert by_span[10.0, 20.0] == pytest.approx(0.10)                    # mean over its 10 snippets
    assert by_span[15.0, 25.0] == pytest.approx(0.25 / 7)                # snippets 15..21 lie in it
    assert by_span[25.0, 30.0] == 0.0 and props[-1, 2] == 0.0           # no snippet: no attention, ranked last
    total = rank_didemo(alpha, starts, starts + 1, MomentsConfig(score="sum"))
    assert {(float(s), float(e)): float(v) for s, e, v in total}[10.0, 25.0] == pytest.approx(1.0)


# ---- scoring predictions files end to end -----------------------------------------------------------------------

def _write(path, rows):
    with PredictionsWriter(path, PredictionsMeta("moments", "test")) as w:
        for vid, qid, props in rows:
            w.add_moments(vid, qid, "q", np.asarray(props, np.float32))


def test_charades_scoring_end_to_end(bench, tmp_path, capsys):
    queries = load_timed_queries("charades-sta", bench)
    path = tmp_path / "m.h5"
    props = {q.clip_id: [[q.start + 2.0, q.end + 2.0, 1.0], [q.start, q.end, 0.5]] for q in queries}
    _write(path, [(q.video_id, q.query_id, props[q.clip_id]) for q in queries])
    out = run_score(capsys, "moments", "--predictions", path, "--benchmark-dir", bench, "--benchmark", "charades-sta")
    truths = [(q.start, q.end) for q in queries]
    ref = [np.array(props[q.clip_id]) for q in queries]
    for n, m in itertools.product((1, 5), (0.3, 0.5, 0.7)):
        assert out[f"r{n}@{m:g}"] == pytest.approx(slow_recall(ref, truths, n, m))
    assert out["r5@0.7"] == 100.0 and out["miou"] == pytest.approx(slow_miou(ref, truths))
    assert out["queries"] == 4 and set(out["per_video"]) == {"3MSZA", "AO8RW", "Y6R7T"}


def test_didemo_scoring_end_to_end(bench, tmp_path, capsys):
    queries = load_timed_queries("didemo", bench)
    path = tmp_path / "d.h5"
    rng = np.random.default_rng(2)
    ranked = {q.clip_id: [CANDIDATES[k] for k in rng.permutation(21)] for q in queries}
    seven = next(q.clip_id for q in queries if q.query_id == "7")
    ranked[seven] = [(0, 0)] + [c for c in CANDIDATES if c != (0, 0)]   # 3 of its 4 annotators' moment first
    rows = [(q.video_id, q.query_id, [[5 * s, 5 * (e + 1), 21 - k] for k, (s, e) in enumerate(ranked[q.clip_id])])
            for q in queries]
    _write(path, rows)
    args = ["moments", "--predictions", path, "--benchmark-dir", bench, "--benchmark", "didemo"]
    out = run_score(capsys, *args)
    times = [[tuple(t) for t in seconds_to_segments(np.array(q.times))] for q in queries]
    r1, r5, miou = slow_didemo([ranked[q.clip_id] for q in queries], times)
    assert (out["r1"], out["r5"], out["miou"]) == (pytest.approx(r1), pytest.approx(r5), pytest.approx(miou))
    assert out["r1"] >= 100 / 3 - 1e-9 and out["queries"] == 3 and "r1@0.5" not in out
    _write(path, rows[1:])                                              # one query absent: fail, or a miss
    assert score.main([str(a) for a in args]) == 2
    capsys.readouterr()
    missed = run_score(capsys, *args, "--missing", "miss")
    assert missed["missing_queries"] == [queries[0].clip_id]
    _write(path, [rows[0], rows[1], (rows[2][0], rows[2][1], [[0.0, 7.0, 1.0]])])   # not a candidate
    assert score.main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a DiDeMo candidate" in err[0] and queries[2].clip_id in err[0]


# ---- eval.infer from a short wsra run ------------------------------------------------------------------------------

def test_infer_writes_charades_windows_and_didemo_candidates(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = str(tmp_path / "store.zarr")
        truth = write_synthetic_store(store, SyntheticSpec(videos=3, dim=16, block=4, seed=0))
        run = tmp_path / "run"
        assert train_main(["--store", store, "--out", str(run), "--preset", "wsra-tiny", "runtime.progress=false",
                           "runtime.checkpoint_every=1000", "optim.max_steps=3"]) == 0
        root = tmp_path / "bench"
        (root / "charades_sta").mkdir(parents=True)
        (root / "didemo").mkdir()
        lines, didemo = [], []
        for k, (cid, (vid, start, end, *_, concept)) in enumerate(sorted(truth.events.items())):
            lines.append(f"{vid} {start:.1f} {end:.1f}##concept {concept}")
            seg = (min(int(start // 5), 5), min(int(start // 5), 5))
            didemo.append({"video": vid, "times": [list(seg)] * 4, "description": f"concept {concept}",
                           "annotation_id": 100 + k})
        (root / "charades_sta" / "charades_sta_test.txt").write_text("\n".join(lines) + "\n")
        (root / "didemo" / "test_data.json").write_text(json.dumps(didemo))
        for benchmark, extra in (("charades-sta", ["--preset", "charades-sta"]), ("didemo", [])):
            out = tmp_path / f"{benchmark}.h5"
            assert infer.main(["moments", "--run", str(run), "--store", store, "--benchmark-dir", str(root),
                               "--benchmark", benchmark, "--out", str(out), "--no-progress", "fps=5",
                               "text.source=store", *extra]) == 0
            preds = read_predictions(out).moments
            sizes = {len(m.proposals) for qs in preds.values() for m in qs.values()}
            assert sizes == ({5} if benchmark == "charades-sta" else {21})
            capsys.readouterr()
            got = run_score(capsys, "moments", "--predictions", out, "--benchmark-dir", root, "--benchmark",
                            benchmark)
            assert got["queries"] == len(lines) and 0 <= got["miou"] <= 1
    finally:
        torch.set_num_threads(threads)
