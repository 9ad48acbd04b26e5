"""Sampling dtheta ~ exp(-dl/alpha) on a local ball: the alpha -> 0 limit is a (normalised) gradient step,
and the sampler minimises an objective without a gradient."""
from __future__ import annotations

import pytest
import torch

from spaces_code.sampling_optimization import (
    ball_proposals,
    cosine,
    logistic_loss,
    mean_step,
    minimize_by_sampling,
    sample_step,
    step_weights,
    zero_one_loss,
)


def _classification(device, n=200):
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(n, generator=g) < 0.5).long()
    centres = torch.tensor([[-1.0, -0.5], [1.0, 0.8]])
    features = centres[labels] + 0.8 * torch.randn(n, 2, generator=g)
    return features.to(device), labels.to(device)


def _rosenbrock(theta):  # (num, 2) -> (num,), curved: the gradient is not the best direction on a big ball
    return (1 - theta[:, 0]) ** 2 + 10 * (theta[:, 1] - theta[:, 0] ** 2) ** 2


def test_ball_proposals_are_uniform_in_the_ball(device, generator):
    deltas = ball_proposals(20_000, 3, 0.5, generator, device)
    norms = deltas.norm(dim=-1)
    assert float(norms.max()) <= 0.5 + 1e-6
    # uniform in a 3-ball: P(|x| <= r/2) = 1/8, and the mean is 0
    assert abs(float((norms <= 0.25).float().mean()) - 1 / 8) < 0.01
    assert float(deltas.mean(0).norm()) < 0.01


@pytest.mark.parametrize("objective", ["logistic", "rosenbrock"])
def test_small_alpha_aligns_the_step_with_minus_gradient(device, generator, objective):
    if objective == "logistic":
        loss_fn, theta = logistic_loss(*_classification(device)), torch.tensor([-1.0, -1.0, 0.5], device=device)
    else:
        loss_fn, theta = _rosenbrock, torch.tensor([-0.5, 0.8], device=device)
    leaf = theta.clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_fn(leaf[None]).sum(), leaf)[0]
    radius = 0.01
    mean = mean_step(loss_fn, theta, 1e-4, radius, 4096, generator)
    assert cosine(mean, -grad) > 0.99
    assert float(mean.norm()) > 0.9 * radius  # concentrated on the sphere |dtheta| = eps
    draws = [cosine(sample_step(loss_fn, theta, 1e-4, radius, 4096, generator), -grad) for _ in range(10)]
    assert min(draws) > 0.95
    # at a high temperature a single draw ignores the gradient: its cosine averages near 0
    hot = [cosine(sample_step(loss_fn, theta, 100.0, radius, 4096, generator), -grad) for _ in range(80)]
    assert abs(sum(hot) / len(hot)) < 0.35


def test_linear_objective_limit_is_normalised_gradient_descent(device, generator):
    direction = torch.tensor([3.0, -4.0, 0.0, 12.0], device=device)  # |c| = 13
    deltas = ball_proposals(8192, 4, 1.0, generator, device)
    weights = step_weights(lambda t: t @ direction, torch.zeros(4, device=device), deltas, alpha=0.0)
    best = weights @ deltas  # alpha = 0: the best candidate on the ball
    assert cosine(best, -direction) > 0.98 and float(best.norm()) > 0.95


def test_step_weights_are_a_distribution_for_any_alpha(device, generator):
    theta = torch.zeros(2, device=device)
    deltas = ball_proposals(100, 2, 1.0, generator, device)
    for alpha in (0.0, 1e-30, 1e-3, 1.0, 1e30):
        w = step_weights(_rosenbrock, theta, deltas, alpha)
        assert bool(torch.isfinite(w).all()) and abs(float(w.sum()) - 1) < 1e-5 and float(w.min()) >= 0
    uniform = step_weights(_rosenbrock, theta, deltas, 1e30)
    assert float((uniform - 0.01).abs().max()) < 1e-6  # alpha -> infinity: every candidate equally likely
    # matches a float64 reference of softmax(-dl/alpha)
    dl = _rosenbrock(deltas.double()) - _rosenbrock(theta[None].double())
    torch.testing.assert_close(step_weights(_rosenbrock, theta, deltas, 0.3).double(),
                               torch.softmax(-dl / 0.3, dim=0), atol=1e-6, rtol=1e-4)
    with pytest.raises(ValueError):
        step_weights(_rosenbrock, theta, deltas, -1.0)


def test_sampling_minimises_the_zero_one_loss(device, generator):
    error_rate = zero_one_loss(*_classification(device))
    theta0 = torch.tensor([-1.0, -1.0, 0.5], device=device)
    path, errors = minimize_by_sampling(error_rate, theta0, steps=150, alpha=0.01, radius=0.2,
                                        num_candidates=64, generator=generator)
    assert path.shape == (151, 3)
    assert float(errors[0]) > 0.9 and float(errors[-1]) < 0.1
    # the error rate has no gradient for gradient descent to follow
    leaf = theta0.clone().requires_grad_(True)
    assert not error_rate(leaf[None]).requires_grad
