"""Sampling dtheta ~ exp(-dl/alpha) on a local ball: the alpha -> 0 limit is a (normalised) gradient step,
and the sampler minimises an objective without a gradient."""
from __future__ import annotations

import pytest
import torch

import math

from spaces_code import randomness
from spaces_code.sampling_optimization import (
    ball_proposals,
    cosine,
    guided_proposals,
    guided_search,
    logistic_loss,
    mean_step,
    minimize_by_sampling,
    mlp_classifier_losses,
    sample_step,
    step_weights,
    xor_dataset,
    zero_one_loss,
)


def _classification(device, seed, n=200):
    """Two Gaussian classes 2.4 apart with spread 0.5: Bayes error Φ(-2.4) ≈ 1%, so a linear classifier
    reaches an error well below 0.1 on every draw (with spread 0.8 the Bayes error is 7% and a sample
    of 200 points often has no classifier below 0.1)."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < 0.5).long()
    centres = torch.tensor([[-1.0, -0.5], [1.0, 0.8]])
    features = centres[labels] + 0.5 * torch.randn(n, 2, generator=g)
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
def test_small_alpha_aligns_the_step_with_minus_gradient(device, generator, seed, objective):
    if objective == "logistic":
        loss_fn = logistic_loss(*_classification(device, seed))
        theta = torch.tensor([-1.0, -1.0, 0.5], device=device)
    else:
        loss_fn, theta = _rosenbrock, torch.tensor([-0.5, 0.8], device=device)
    leaf = theta.clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_fn(leaf[None]).sum(), leaf)[0]
    radius = 0.01
    # "small" alpha is relative to the loss change on the ball, eps |grad l|: with kappa = eps |grad l| / alpha
    # the draw's direction has density ∝ exp(kappa cos) (to first order), so 1 - cos ~ 1/kappa. A fixed
    # alpha = 1e-4 gave kappa ≈ 50 on the logistic loss, where 1 - cos > 0.05 has probability ~8% per draw.
    alpha = 1e-3 * radius * float(grad.norm())  # kappa = 1000
    mean = mean_step(loss_fn, theta, alpha, radius, 4096, generator)
    assert cosine(mean, -grad) > 0.95
    assert float(mean.norm()) > 0.93 * radius  # concentrated on the sphere |dtheta| = eps
    # with kappa = 1000 the tilt itself allows 1 - cos ~ 1e-3; what is left is the resolution of 4096
    # uniform candidates in the ball. Seed sweep (19 seeds, both objectives): mean step cos >= 0.983 and
    # |mean| >= 0.979 eps, single draws cos >= 0.957; bounds keep 3x on 1 - cos: 0.95, 0.93 eps, 0.87
    draws = [cosine(sample_step(loss_fn, theta, alpha, radius, 4096, generator), -grad) for _ in range(10)]
    assert min(draws) > 0.87
    # at a high temperature a single draw ignores the gradient: its cosine averages near 0
    hot = [cosine(sample_step(loss_fn, theta, 100.0, radius, 4096, generator), -grad) for _ in range(80)]
    # a uniform direction's cosine has variance 1/d <= 1/2: the mean of 80 has standard error <= 0.079,
    # and 0.4 is 5 of them (probability < 1e-6 on any stream)
    assert abs(sum(hot) / len(hot)) < 0.4


def test_linear_objective_limit_is_normalised_gradient_descent(device, generator):
    direction = torch.tensor([3.0, -4.0, 0.0, 12.0], device=device)  # |c| = 13
    deltas = ball_proposals(8192, 4, 1.0, generator, device)
    weights = step_weights(lambda t: t @ direction, torch.zeros(4, device=device), deltas, alpha=0.0)
    best = weights @ deltas  # alpha = 0: the best candidate on the ball
    # the best candidate maximises the projection t = r cos on -c/|c|. A 4-ball cap {t > 1 - d} holds a
    # fraction 0.96 d^{5/2} of the volume (small d), so no candidate among 8192 reaches t > 0.92 with
    # probability exp(-8192 * 0.96 * 0.08^{5/2}) < 1e-6 on any stream; cos >= t and |best| >= t.
    # (The old bound cos > 0.98 failed on 2 of 7 seeds.)
    projection = float(best @ -direction) / float(direction.norm())
    assert projection > 0.92
    assert cosine(best, -direction) > 0.92 and float(best.norm()) > 0.92


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


def test_sampling_minimises_the_zero_one_loss(device, generator, seed):
    error_rate = zero_one_loss(*_classification(device, seed))
    theta0 = torch.tensor([-1.0, -1.0, 0.5], device=device)
    path, errors = minimize_by_sampling(error_rate, theta0, steps=150, alpha=0.01, radius=0.2,
                                        num_candidates=64, generator=generator)
    assert path.shape == (151, 3)
    # Seed sweep (19 seeds): errors[0] >= 0.975; the final error is <= 0.01 on 10 seeds but 0.48-0.58 on
    # 8: the walk can drift onto the plateau where the boundary misses the data (error ~0.5, every
    # candidate has dl = 0, so nothing steers it). What holds on every stream is the drop: >= 0.41,
    # bound 0.13 (3x). Scale-aware proposals tried (sweeps at steps = 150, alpha = 0.01, 64 candidates):
    # radius 0.2 |theta| (the error rate is invariant to theta -> c theta) ends above 0.3 on 1 of 200 streams
    # (plain: 54 of 200) -- better, yet not on every stream; per-parameter radii 1/sqrt(diag Fisher) of the
    # logistic model end above 0.3 on 4-31 of 40. So no rate is asserted; the relative ball's exact scale
    # symmetry is (next test).
    assert float(errors[0]) > 0.9
    assert float(errors[0] - errors[-1]) > 0.13
    # the error rate has no gradient for gradient descent to follow
    leaf = theta0.clone().requires_grad_(True)
    assert not error_rate(leaf[None]).requires_grad


def test_relative_proposal_makes_the_walk_blind_to_the_scale_of_theta(device, generator, seed):
    # The error rate of sign(w.x + b) is the same at theta and 2 theta. With the relative ball |dtheta| <= eps |theta|
    # every candidate, every weight and so every choice scales with theta: the walk from 2 theta0 is exactly twice
    # the walk from theta0 for the same random stream (x2 is exact in floating point; tolerance 1e-6 for
    # reduction order). The fixed ball has no such symmetry: its first step is a 2x smaller turn from 2 theta0.
    error_rate = zero_one_loss(*_classification(device, seed))
    theta0 = torch.tensor([-1.0, -1.0, 0.5], device=device)
    stream = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    paths = {}
    for scale in (1.0, 2.0):
        paths[scale], _ = minimize_by_sampling(error_rate, scale * theta0, steps=60, alpha=0.01, radius=0.2,
                                               generator=torch.Generator().manual_seed(stream), relative=True)
    torch.testing.assert_close(paths[2.0], 2 * paths[1.0], rtol=1e-6, atol=1e-6)
    steps = paths[1.0].diff(dim=0).norm(dim=-1) / paths[1.0][:-1].norm(dim=-1)
    assert float(steps.max()) <= 0.2 * (1 + 1e-5)  # every step within the relative ball


def test_mle_guided_proposal_lowers_the_task_loss_where_unguided_sampling_stalls(generator, seed):
    """Paper's claim on a 257-parameter network (error rate as task loss, logistic loss as MLE loss):
    with the same budget (100 steps x 32 candidates, same noise scale), candidates around the MLE
    gradient step lower the error rate far more than zero-mean candidates, which stall.

    Seed sweep of 200 seeds (this test's streams): the unguided error after 100 steps is >= 0.3125
    everywhere (start ~0.5); with every candidate guided the final error is <= 0.025, so the gap is
    >= 0.3125 (bound 0.05, 6x) and the drop >= 0.415 (bound 0.1, 4x). The half-guided mixture of the page
    is slower: over 200 seeds its gap was as small as 0.04 on one seed, so it is not what is asserted."""
    features, labels = xor_dataset(400, 30, generator)
    error_rate, logistic, dim = mlp_classifier_losses(features, labels, hidden=8)
    assert dim == 257
    theta0 = randomness.randn(dim, generator=generator) / math.sqrt(30)
    runs = {}
    for guided_fraction in (0.0, 1.0):
        _, runs[guided_fraction] = guided_search(error_rate, logistic, theta0, 100, alpha=0.002, scale=0.02,
                                                 step=4.0, guided_fraction=guided_fraction, num_candidates=32,
                                                 generator=generator)
    unguided, guided = runs[0.0], runs[1.0]
    assert float(unguided[-1] - guided[-1]) > 0.05
    assert float(guided[0] - guided[-1]) > 0.1


def test_guided_proposals_are_the_stated_mixture(device, generator):
    """Half the candidates (in expectation) sit around -eta g, the rest around 0, each with spread sigma."""
    theta = torch.zeros(6, device=device)
    g = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0, 3.0], device=device)
    deltas = guided_proposals(20_000, theta, g, scale=0.1, step=2.0, guided_fraction=0.25, generator=generator)
    assert deltas.device.type == device.type
    # each candidate is within 6 sigma of one of the two centres (|z| > 6 in some coordinate: p < 2e-8)
    to_guided = (deltas + 2.0 * g).norm(dim=-1)
    to_zero = deltas.norm(dim=-1)
    near_guided = to_guided < to_zero
    assert bool((torch.minimum(to_guided, to_zero) < 0.6 * math.sqrt(6)).all())
    # the guided share is binomial(20000, 0.25): standard error 0.0031, tolerance 0.02 (6.5 SE)
    assert abs(float(near_guided.float().mean()) - 0.25) < 0.02
    # the spread around each centre is sigma: sample std of 15 000+ normals within 5% (>= 6 SE)
    assert abs(float((deltas[~near_guided]).std()) - 0.1) < 0.005
    unguided = guided_proposals(1000, theta, g, 0.1, 2.0, guided_fraction=0.0, generator=generator)
    assert float(unguided.norm(dim=-1).max()) < 0.6 * math.sqrt(6)


def test_samplers_on_device_match_cpu_and_ignore_the_global_rng(device, seed):
    """A CPU generator: the same candidates and the same chosen steps whatever the device."""
    theta = torch.tensor([-0.5, 0.8])
    results = []
    for where, global_seed in (("cpu", seed + 1), (device, seed + 2)):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(seed)
        path, _ = minimize_by_sampling(_rosenbrock, theta.double().to(where), steps=20, alpha=0.01, radius=0.1,
                                       num_candidates=64, generator=g)
        results.append(path.cpu())
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-12)
