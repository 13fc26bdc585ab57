"""Losses against loop-by-loop references: values and gradients, every form, margin, groups, word level."""
from __future__ import annotations

import math

import pytest
import torch

from tests.trainer.methods.stg.naive import naive_contrastive, naive_word_level
from trainer.losses import contrastive, matrix_scores, pair_scores, reduce_groups, word_level


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    value = fn(x)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("form", ["symmetric", "milnce"])
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_contrastive_value_and_gradient_match_the_formula(form, margin):
    s = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    got, got_grad = _grad(lambda x: contrastive(x, form, margin), s)
    want, want_grad = _grad(lambda x: naive_contrastive(x, form, margin), s)
    torch.testing.assert_close(got, want.to(got.dtype))
    torch.testing.assert_close(got_grad, want_grad)


def test_contrastive_hand_values():
    n = 4
    uniform = torch.zeros(n, n)
    assert math.isclose(contrastive(uniform, "symmetric").item(), 2 * math.log(n), rel_tol=1e-6)
    assert math.isclose(contrastive(uniform, "milnce").item(), math.log(2 * n), rel_tol=1e-6)
    perfect = torch.eye(n) * 50
    assert contrastive(perfect, "symmetric").item() < 1e-6
    assert math.isclose(contrastive(perfect, "milnce").item(), math.log(2), rel_tol=1e-5)  # positive counted twice
    assert contrastive(uniform, "symmetric", margin=1.0) > contrastive(uniform, "symmetric")


def test_grouped_losses_are_each_groups_loss():
    s = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(2))
    per_group = contrastive(s, "milnce")
    assert per_group.shape == (3,)
    for g in range(3):
        torch.testing.assert_close(per_group[g], contrastive(s[g], "milnce"))
    torch.testing.assert_close(reduce_groups(per_group, "sum"), per_group.sum())
    torch.testing.assert_close(reduce_groups(per_group, "mean"), per_group.mean())


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_word_level_value_and_gradient_match_eq6(margin):
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 4, 6, dtype=torch.float64, generator=g)
    mask = torch.arange(6)[None] < torch.tensor([6, 1, 3, 5])[:, None]
    got, got_grad = _grad(lambda x: word_level(x, mask, margin), scores)
    want, want_grad = _grad(lambda x: naive_word_level(x, mask, margin), scores)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
    assert got_grad[:, 1, 1:].abs().sum() == 0                           # padding words carry no gradient
    grouped = word_level(scores[None].expand(2, -1, -1, -1), mask[None].expand(2, -1, -1), margin)
    torch.testing.assert_close(grouped, got.expand(2))


def test_scores_normalisation_and_temperature():
    g = torch.Generator().manual_seed(4)
    v, t = torch.randn(3, 8, generator=g), torch.randn(5, 8, generator=g)
    torch.testing.assert_close(matrix_scores(v, t, False, 1.0), v @ t.T)
    cos = torch.nn.functional.cosine_similarity(v[:, None], t[None], dim=-1)
    torch.testing.assert_close(matrix_scores(v, t, True, 0.07), cos / 0.07)
    pv, pt = torch.randn(3, 5, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    torch.testing.assert_close(pair_scores(pv, pt, False, 2.0), (pv * pt).sum(-1) / 2)
    torch.testing.assert_close(pair_scores(pv, pt, True, 1.0),
                               torch.nn.functional.cosine_similarity(pv, pt, dim=-1))
