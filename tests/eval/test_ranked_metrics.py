"""Retrieval and moment metrics against hand cases and slow references."""
import numpy as np
import pytest

from eval.metrics.moments import chance_moment_metrics, interval_iou, moment_metrics
from eval.metrics.retrieval import both_directions, median_rank, ranks, summarise


def slow_ranks(scores, positive):
    """Rank = 1 + candidates scoring at least as high as the correct one (other than itself); n + 1 when absent."""
    out = []
    for row, pos in zip(scores, positive):
        if pos < 0:
            out.append(len(row) + 1)
            continue
        out.append(1 + sum(1 for j, s in enumerate(row) if j != pos and s >= row[pos]))
    return np.array(out)


def test_ranks_hand_cases_and_ties():
    scores = np.array([[0.9, 0.1, 0.5], [0.5, 0.5, 0.1], [0.2, 0.3, 0.1]])
    assert ranks(scores, np.array([0, 1, 2])).tolist() == [1, 2, 3]
    # the released code's argsort()[::-1] puts the later of two tied candidates first
    assert ranks(scores, np.array([0, 1, 2]), "reference").tolist() == [1, 1, 3]
    assert ranks(scores, np.array([0, 0, -1])).tolist() == [1, 2, 4]
    constant = np.zeros((4, 4))
    assert ranks(constant, np.arange(4)).tolist() == [4, 4, 4, 4]       # ties count against the query


def test_ranks_against_the_slow_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 4, size=(7, 9)).astype(float)           # many ties
        positive = rng.integers(-1, 9, size=7)
        np.testing.assert_array_equal(ranks(scores, positive), slow_ranks(scores, positive))
        distinct = rng.standard_normal((7, 9))
        np.testing.assert_array_equal(ranks(distinct, positive, "reference"), slow_ranks(distinct, positive))


def test_summaries():
    r = np.array([1, 2, 6, 11, 3])
    out = summarise(r)
    assert (out["r1"], out["r5"], out["r10"]) == (20.0, 60.0, 80.0)
    assert out["medr"] == 3 and out["meanr"] == 4.6 and out["queries"] == 5
    assert median_rank(np.array([1, 2, 3, 4])) == 2.5 and median_rank(np.array([1, 2, 3, 4]), "reference") == 2
    both = both_directions(np.eye(3), np.arange(3), np.arange(3))
    assert both["t2v"]["r1"] == both["v2t"]["r1"] == 100.0
    with pytest.raises(ValueError, match="no queries"):
        summarise(np.array([]))


def test_interval_iou():
    props = np.array([[0, 10, 0.9], [5, 15, 0.8], [10, 20, 0.1], [2, 4, 0.0]])
    np.testing.assert_allclose(interval_iou(props, (0, 10)), [1.0, 5 / 15, 0.0, 0.2])
    assert interval_iou(np.zeros((0, 3)), (0, 1)).shape == (0,)


def slow_moments(proposals, truths, ranks_, ious):
    out = {}
    for n in ranks_:
        for m in ious:
            hits = 0
            for props, (s, e) in zip(proposals, truths):
                for p in list(props)[:n]:
                    inter = max(0.0, min(p[1], e) - max(p[0], s))
                    if inter / ((p[1] - p[0]) + (e - s) - inter) >= m:
                        hits += 1
                        break
            out[f"r{n}@{m:g}"] = 100.0 * hits / len(truths)
    first = []
    for props, (s, e) in zip(proposals, truths):
        if len(props) == 0:
            first.append(0.0)
            continue
        p = props[0]
        inter = max(0.0, min(p[1], e) - max(p[0], s))
        first.append(inter / ((p[1] - p[0]) + (e - s) - inter))
    out["miou"] = float(np.mean(first))
    return out


def test_moment_metrics_hand_case_and_slow_reference():
    proposals = [np.array([[0, 10, 0.9], [20, 30, 0.5]]), np.array([[5, 15, 0.7]]), np.zeros((0, 3))]
    truths = [(20, 30), (0, 10), (1, 2)]
    out = moment_metrics(proposals, truths, (1, 5), (0.3, 0.5))
    assert out["r1@0.3"] == pytest.approx(100 / 3) and out["r5@0.5"] == pytest.approx(100 / 3)
    assert out["r5@0.3"] == pytest.approx(200 / 3) and out["miou"] == pytest.approx((0 + 1 / 3 + 0) / 3)
    rng = np.random.default_rng(1)
    for _ in range(10):
        proposals, truths = [], []
        for _ in range(6):
            s = rng.uniform(0, 50, size=rng.integers(0, 7))
            proposals.append(np.stack([s, s + rng.uniform(1, 20, size=len(s)), -np.arange(len(s))], 1)
                             if len(s) else np.zeros((0, 3)))
            t = rng.uniform(0, 50)
            truths.append((t, t + rng.uniform(1, 20)))
        got, want = moment_metrics(proposals, truths, (1, 3, 5), (0.1, 0.5, 0.7)), slow_moments(
            proposals, truths, (1, 3, 5), (0.1, 0.5, 0.7))
        assert got.pop("queries") == 6
        assert got == pytest.approx(want)


def test_chance_moments_equal_the_mean_over_every_ranking():
    """The chance level is the average of moment_metrics over all orderings of each query's candidates."""
    import itertools

    assert chance_moment_metrics([np.array([[0, 10], [20, 30]])], [(20, 30)], (1, 5), (0.5,)) == {
        "r1@0.5": 50.0, "r5@0.5": 100.0, "miou": 0.5, "queries": 1}
    rng = np.random.default_rng(3)
    for _ in range(5):
        candidates, truths = [], []
        for _ in range(2):
            s = rng.uniform(0, 30, size=rng.integers(0, 5))
            candidates.append(np.stack([s, s + rng.uniform(2, 15, size=len(s))], 1) if len(s) else np.zeros((0, 2)))
            t = rng.uniform(0, 30)
            truths.append((t, t + rng.uniform(2, 15)))
        orders = [list(itertools.permutations(range(len(c)))) or [()] for c in candidates]
        runs = [moment_metrics([c[list(o)] for c, o in zip(candidates, combo)], truths, (1, 2), (0.3, 0.5))
                for combo in itertools.product(*orders)]
        want = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
        assert chance_moment_metrics(candidates, truths, (1, 2), (0.3, 0.5)) == pytest.approx(want)
