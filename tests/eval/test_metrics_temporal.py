"""Ordered alignment, temporal segments, IoU/IoD, MoF and the IoU+Pointing game against slow references."""
import itertools

import numpy as np
import pytest
from scipy.stats import poisson

from eval.metrics.alignment import align_ordered, log_softmax, poisson_log_pmf
from eval.metrics.spatiotemporal import iou_pointing_counts
from eval.metrics.temporal import iou_iod, mof, runs


def brute_force_alignment(emissions, lp):
    """Every way to cut T seconds into K non-empty ordered blocks; best total score, earliest cuts on ties."""
    n_sec, k = emissions.shape
    best, best_bounds = -np.inf, None
    for cuts in itertools.combinations(range(1, n_sec), k - 1):  # lexicographic: earliest first
        bounds = (0, *cuts, n_sec)
        total = sum(emissions[bounds[i]:bounds[i + 1], i].sum() + lp[i][bounds[i + 1] - bounds[i]] for i in range(k))
        if total > best + 1e-12:
            best, best_bounds = total, bounds
    return np.array(best_bounds), best


def score_of(bounds, emissions, lp):
    return sum(emissions[bounds[i]:bounds[i + 1], i].sum() + lp[i][bounds[i + 1] - bounds[i]]
               for i in range(len(bounds) - 1))


def test_alignment_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n_sec, k = int(rng.integers(1, 9)), int(rng.integers(1, 5))
        if k > n_sec:
            continue
        emissions = rng.normal(size=(n_sec, k))
        lp = np.stack([poisson_log_pmf(n_sec, rng.uniform(0.5, 6)) for _ in range(k)])
        bounds = align_ordered(emissions, lp)
        expected, best = brute_force_alignment(emissions, lp)
        assert score_of(bounds, emissions, lp) == pytest.approx(best)
        np.testing.assert_array_equal(bounds, expected)


def test_alignment_ties_take_the_earliest_boundary_and_one_second_works():
    flat = np.zeros((4, 2))
    lp = np.zeros((2, 5))
    lp[:, 0] = -np.inf
    np.testing.assert_array_equal(align_ordered(flat, lp), [0, 1, 4])
    np.testing.assert_array_equal(align_ordered(np.zeros((1, 1)), np.array([[-np.inf, 0.0]])), [0, 1])


def test_alignment_follows_the_scores():
    emissions = np.log(np.array([[.9, .1]] * 3 + [[.1, .9]] * 5))
    lp = np.stack([poisson_log_pmf(8, 4.0)] * 2)
    np.testing.assert_array_equal(align_ordered(emissions, lp), [0, 3, 8])


def test_alignment_rejects_impossible_transcripts():
    with pytest.raises(ValueError, match="cannot align"):
        align_ordered(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        align_ordered(np.zeros((4, 2)), np.zeros((2, 4)))


def test_poisson_and_log_softmax():
    np.testing.assert_allclose(poisson_log_pmf(30, 5.0)[1:], poisson.logpmf(np.arange(1, 31), 5.0))
    assert poisson_log_pmf(3, 2.0)[0] == -np.inf
    x = np.random.default_rng(1).normal(size=(6, 4))
    np.testing.assert_allclose(np.exp(log_softmax(x)).sum(1), 1.0)
    np.testing.assert_allclose(log_softmax(log_softmax(x)), log_softmax(x))


def test_runs():
    np.testing.assert_array_equal(runs(np.array([2, 2, 0, 0, 0, 2])), [[0, 2, 2], [2, 5, 0], [5, 6, 2]])
    np.testing.assert_array_equal(runs(np.array([7])), [[0, 1, 7]])
    assert runs(np.array([], int)).shape == (0, 3)


def test_iou_iod_hand_cases():
    gt = np.array([[0, 10], [0, 10], [0, 10], [0, 10], [5, 6]])
    pred = np.array([[0, 10], [10, 20], [5, 15], [2, 4], [5, 5]])
    iou, iod = iou_iod(gt, pred)
    np.testing.assert_allclose(iou, [1, 0, 5 / 15, 2 / 10, 0])  # last: empty prediction
    np.testing.assert_allclose(iod, [1, 0, 5 / 10, 1, 0])


def test_iou_iod_against_per_second_counts():
    rng = np.random.default_rng(2)
    gt, pred = np.sort(rng.integers(0, 30, (100, 2)), 1), np.sort(rng.integers(0, 30, (100, 2)), 1)
    iou, iod = iou_iod(gt, pred)
    for (g0, g1), (p0, p1), a, b in zip(gt, pred, iou, iod):
        g, p = set(range(g0, g1)), set(range(p0, p1))
        assert a == pytest.approx(len(g & p) / len(g | p) if g | p else 0.0)
        assert b == pytest.approx(len(g & p) / len(p) if p else 0.0)


def test_mof():
    assert mof(np.array([1, 2, 3, 3]), np.array([1, 2, 0, 3])) == (3, 4)
    with pytest.raises(ValueError):
        mof(np.array([1]), np.array([1, 2]))


def slow_iou_pointing(gt_frame, known, action, label_ok, hit):
    correct = union = 0.0
    for t in range(len(gt_frame)):
        if gt_frame[t] and label_ok[t] and action[t]:
            correct += hit[t]
        if gt_frame[t] or (action[t] and known[t]):
            union += 1
    return correct, union


def test_iou_pointing_matches_slow_reference_and_hand_cases():
    rng = np.random.default_rng(3)
    for _ in range(50):
        gt_frame = rng.random(20) < 0.4
        known = gt_frame | (rng.random(20) < 0.5)
        action, label_ok, hit = rng.random(20) < 0.5, rng.random(20) < 0.6, rng.random(20)
        counts = iou_pointing_counts(gt_frame, known, action, label_ok, hit)
        correct, union = slow_iou_pointing(gt_frame, known, action, label_ok, hit)
        assert counts.correct == pytest.approx(correct) and counts.union == union
    ones = np.ones(5, bool)
    perfect = iou_pointing_counts(ones, ones, ones, ones, np.ones(5))
    assert perfect.correct / perfect.union == 1.0
    nothing = iou_pointing_counts(ones, ones, ~ones, ones, np.ones(5))  # all background
    assert nothing.correct == 0 and nothing.union == 5
    everywhere = iou_pointing_counts(np.array([1, 0, 0, 0], bool), np.ones(4, bool), np.ones(4, bool),
                                     np.ones(4, bool), np.ones(4))
    assert everywhere.correct / everywhere.union == 0.25  # predicting actions everywhere is penalised
    with pytest.raises(ValueError):
        iou_pointing_counts(ones, ~ones, ones, ones, np.ones(5))
