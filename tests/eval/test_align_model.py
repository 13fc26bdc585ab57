"""The published aligner's parts by hand (Poisson length model, path grammar, decoder quirks) and the vectorised
decoder against a slow, obvious one: a dict of hypotheses updated one by one, as the published code does."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln

from eval.metrics.alignment import (NoAlignmentError, align_published, check_mean_lengths, path_grammar,
                                    published_poisson, step_emissions)


# ---------------------------------------------------------------------------------------------- length model
def slow_length_score(length: int, mean: float, max_length: int | None) -> float:
    """One value of the published renormalised Poisson, with plain Python floats and loops."""
    if length <= 0 or (max_length and length >= max_length):
        return -math.inf
    log_fak = 0.0
    for k in range(1, length + 1):
        log_fak += math.log(k)
    norm_fak = 0.0
    for k in range(1, int(mean) + 1):
        norm_fak += math.log(k)
    r = float(np.round(mean))
    norm = r * math.log(r) - r - norm_fak
    return length * math.log(mean) - mean - log_fak - norm


def test_poisson_is_renormalised_at_the_rounded_mean():
    lengths = np.arange(0, 12)
    table = published_poisson(np.array([2.0, 5.0]), lengths)
    assert table[0, 0] == table[0, 1] == -np.inf  # length 0 cannot happen
    # Poisson(2): P(1) = P(2) = the maximum, P(3) = P(2) * 2 / 3
    assert table[1, 0] == pytest.approx(0.0, abs=1e-12) and table[2, 0] == pytest.approx(0.0, abs=1e-12)
    assert table[3, 0] == pytest.approx(math.log(2 / 3))
    assert table[5, 1] == pytest.approx(0.0, abs=1e-12) and np.argmax(table[:, 1]) in (4, 5)
    poisson = lengths[1:] * np.log(5.0) - 5.0 - gammaln(lengths[1:] + 1)
    np.testing.assert_allclose(table[1:, 1], poisson - poisson[4], atol=1e-12)


def test_non_integer_mean_uses_both_the_rounded_and_the_truncated_mean():
    """norm = round(m) log round(m) - round(m) - log(int(m)!): for m = 37.6, 38 and 37."""
    table = published_poisson(np.array([37.6]), np.array([37]))
    want = 37 * math.log(37.6) - 37.6 - gammaln(38) - (38 * math.log(38) - 38 - gammaln(38))
    assert table[0, 0] == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("mean", [1.0, 2.0, 37.6, 45.5, 150.0, 212.7])
def test_poisson_equals_the_loop_formula_bit_for_bit(mean):
    lengths = np.array([0, 1, 7, 20, 149, 150, 151, 999, 4980, 4999, 5000, 5020])
    got = published_poisson(np.array([mean]), lengths)[:, 0]
    want = [slow_length_score(int(length), mean, 5000) for length in lengths]
    assert got.tolist() == want


def test_length_limit_and_no_limit():
    lengths = np.array([4999, 5000, 5001, 20000])
    limited = published_poisson(np.array([150.0]), lengths)[:, 0]
    assert np.isfinite(limited[0]) and (limited[1:] == -np.inf).all()  # the published table stops at 4999
    unlimited = published_poisson(np.array([150.0]), lengths, max_length=None)[:, 0]
    assert np.isfinite(unlimited).all() and (np.diff(unlimited) < 0).all()


@pytest.mark.parametrize("bad", [0.0, -3.0, np.nan, np.inf, 0.4, 0.5])
def test_bad_mean_lengths_are_refused(bad):
    with pytest.raises(ValueError, match="above 0.5"):
        check_mean_lengths(np.array([150.0, bad]))


# ---------------------------------------------------------------------------------------------- grammar
def test_grammar_lines_form_a_prefix_tree():
    g = path_grammar([[5, 1, 5], [5, 1, 2], [3], [5, 1, 5]])  # the repeated line adds nothing
    assert g.classes.tolist() == [5, 1, 5, 2, 3]
    assert g.parent.tolist() == [-1, 0, 1, 1, -1]
    assert g.final.tolist() == [False, False, True, True, True]
    assert g.keys == ((-1, 5), (-1, 5, 1), (-1, 5, 1, 5), (-1, 5, 1, 2), (-1, 3))


def test_a_line_that_is_a_prefix_of_another_can_end_there():
    g = path_grammar([[1, 2], [1, 2, 3]])
    assert g.parent.tolist() == [-1, 0, 1] and g.final.tolist() == [False, True, True]


def test_one_transcript_is_a_chain_with_repeated_labels_kept_apart():
    g = path_grammar([[9, 0, 9, 1, 9]])
    assert g.parent.tolist() == [-1, 0, 1, 2, 3] and g.final.tolist() == [False] * 4 + [True]


def test_empty_transcript_is_refused():
    with pytest.raises(ValueError, match="empty"):
        path_grammar([[1], []])


def test_grammar_alternatives_pick_the_better_line():
    logp = np.log(np.tile([0.2, 0.8], (40, 1))).astype(np.float32)
    result = align_published(logp, path_grammar([[0], [1]]), np.array([40.0, 40.0]), frame_sampling=4)
    assert (result.frame_classes == 1).all()


# ---------------------------------------------------------------------------------------------- decoder quirks
def test_step_emissions_count_frame_zero_twice():
    """The first hypothesis holds frames 0..fs-1; step t = 0 adds frame 0 again; step t adds t-fs+1..t."""
    logp = np.arange(1, 8, dtype=np.float32)[:, None] * -1.0
    em = step_emissions(logp, 3)[:, 0]
    assert em.tolist() == [-6.0, -1.0, -(2 + 3 + 4), -(5 + 6 + 7)]


def test_first_steps_labels_are_dropped():
    """4 frames, hypotheses every 2: frame 0 clearly says class 0, yet the best path enters class 1 at step 0
    (its score only counts frame 0 for class 0, twice) and every output frame is class 1."""
    logp = np.array([[0, -10], [-10, 0], [-10, 0], [-10, 0]], np.float32)
    result = align_published(logp, path_grammar([[0, 1]]), np.array([3.0, 3.0]), frame_sampling=2)
    assert result.frame_classes.tolist() == [1, 1, 1, 1] and result.step_nodes.tolist() == [1, 1]


def test_positive_values_are_shifted_by_twice_the_maximum():
    rng = np.random.default_rng(3)
    logp = np.log(rng.dirichlet(np.ones(3), 60)).astype(np.float32)
    g, means = path_grammar([[2, 0, 1]]), np.array([15.0, 20.0, 25.0])
    shifted = logp.copy()
    shifted[5, 2] = 0.75  # now max > 0: everything moves by -1.5
    a = align_published(shifted, g, means, frame_sampling=5)
    b = align_published(shifted - np.float32(1.5), g, means, frame_sampling=5)
    assert a.score == b.score and (a.frame_nodes == b.frame_nodes).all()


def test_too_few_frames_is_an_error():
    with pytest.raises(NoAlignmentError):
        align_published(np.zeros((19, 2), np.float32), path_grammar([[0, 1]]), np.array([5.0, 5.0]))
    with pytest.raises(NoAlignmentError):  # 3 entries need 2 steps after the first hypothesis
        align_published(np.zeros((20, 2), np.float32), path_grammar([[0, 1, 0]]), np.array([5.0, 5.0]))


# ---------------------------------------------------------------------------------------------- slow reference
def slow_published(logp: np.ndarray, transcripts, means, fs: int, beam: int, max_length):
    """The published decoder's behaviour written plainly: insertion-ordered dict of hypotheses keyed by
    (prefix, segment length); a later equal score replaces; the lowest (score, key) pairs are pruned."""
    logp = np.asarray(logp, np.float32)
    if logp.max() > 0:
        logp = logp - 2 * logp.max()
    cum = np.cumsum(logp, axis=0)
    nxt, ends = {}, set()
    for line in transcripts:
        prefix = (-1,)
        for c in line:
            nxt.setdefault(prefix, [])
            if c not in nxt[prefix]:
                nxt[prefix].append(c)
            prefix += (c,)
        ends.add(prefix)

    def gain(t, c):
        return float(cum[t, c]) if t < fs else float(cum[t, c] - cum[t - fs, c])

    def put(table, key, score, trace):
        if key not in table or table[key][0] <= score:
            table[key] = (score, trace)

    hyps = {}
    for c in nxt[(-1,)]:
        put(hyps, ((-1, c), fs), gain(fs - 1, c), ((-1, c), None))
    for t in range(0, len(logp), fs):
        new = {}
        for (prefix, length), (score, trace) in hyps.items():
            stay = score + gain(t, prefix[-1])
            put(new, (prefix, length + fs), stay, (prefix, trace))
            for c in nxt.get(prefix, []):
                put(new, (prefix + (c,), fs), stay + slow_length_score(length, means[prefix[-1]], max_length),
                    (prefix + (c,), trace))
        if len(new) > beam:
            doomed = sorted((score, prefix + (length,)) for (prefix, length), (score, _) in new.items())
            for _, key in doomed[:len(new) - beam]:
                del new[(key[:-1], key[-1])]
        hyps = new
    best, best_trace = -math.inf, None
    for (prefix, length), (score, trace) in hyps.items():
        if prefix in ends:
            final = score + slow_length_score(length, means[prefix[-1]], max_length)
            if final >= best:
                best, best_trace = final, trace
    if best == -math.inf:
        return None
    steps = []
    while best_trace is not None:
        steps.append(best_trace[0][-1])
        best_trace = best_trace[1]
    steps = steps[::-1][1:]  # the first hypothesis' frames are dropped
    return best, np.array([steps[f // fs] for f in range(len(logp))])


def random_case(rng):
    n_classes = int(rng.integers(2, 5))
    lines = [list(rng.integers(0, n_classes, int(rng.integers(1, 5)))) for _ in range(int(rng.integers(1, 4)))]
    fs = int(rng.choice([1, 2, 3, 5, 7]))
    frames = int(rng.integers(fs, 90 if fs > 1 else 40))
    kind = rng.integers(3)
    if kind == 0:  # continuous
        logp = np.log(rng.dirichlet(np.ones(n_classes), frames))
    elif kind == 1:  # few values: many exact ties
        logp = -rng.integers(0, 3, (frames, n_classes)).astype(float)
    else:  # all equal, some positive
        logp = np.full((frames, n_classes), 0.5)
    means = np.round(rng.uniform(1, 30, n_classes), int(rng.integers(0, 2)))
    beam = int(rng.choice([3, 8, 20, 10_000]))
    max_length = int(rng.choice([0, 16, 30, 60, 5000]))
    return logp.astype(np.float32), [[int(c) for c in line] for line in lines], means, fs, beam, max_length


@pytest.mark.parametrize("seed", range(80))
def test_vectorised_decoder_equals_the_slow_one(seed):
    logp, lines, means, fs, beam, max_length = random_case(np.random.default_rng(seed))
    want = slow_published(logp, lines, means, fs, beam, max_length or None)
    try:
        got = align_published(logp, path_grammar(lines), means, fs, beam, max_length or None)
    except NoAlignmentError:
        assert want is None
        return
    assert want is not None
    assert got.score == want[0]
    np.testing.assert_array_equal(got.frame_classes, want[1])
