"""NCE with log Z as a learned parameter recovers the MLE / the truth and normalises the model by itself."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.nce import (
    LogLinearModel,
    fit,
    mle_loss,
    nce_expected_loss,
    nce_logit,
    nce_loss,
    sample_states,
)

V, K = 50, 4


def _truth(device):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(V, K, generator=g, dtype=torch.float64).to(device)
    truth = LogLinearModel(features)
    with torch.no_grad():
        truth.theta.copy_(torch.randn(K, generator=g, dtype=torch.float64).to(device))
    return features, truth


def _log_uniform(device):
    return torch.full((V,), -math.log(V), device=device, dtype=torch.float64)


@pytest.mark.parametrize("noise", ["uniform", "skewed"])
def test_population_nce_optimum_is_the_truth_with_gamma_log_z(device, noise):
    """With exact expectations the NCE minimiser is theta* and gamma = log Z(theta*) (to optimiser precision)."""
    features, truth = _truth(device)
    if noise == "uniform":
        log_q = _log_uniform(device)
    else:
        weights = torch.linspace(0.1, 1.0, V, device=device, dtype=torch.float64)
        log_q = (weights / weights.sum()).log()
    with torch.no_grad():
        p = truth.exact_log_prob().exp()
        log_z = truth.exact_log_partition()
    model = LogLinearModel(features)
    fit(model, lambda: nce_expected_loss(model, p, log_q, noise_ratio=3.0))
    with torch.no_grad():
        assert float((model.theta - truth.theta).norm()) < 1e-4
        assert abs(float(model.log_z - log_z)) < 1e-4


def test_nce_estimate_is_close_to_the_mle_and_the_truth(device):
    """N = 20 000 data, nu = 10: |theta_NCE - theta_MLE| < 0.05, |theta_NCE - theta*| < 0.15 (|theta*| ≈ 2),
    and the learned gamma matches the exact log Z of the fitted model within 0.03."""
    features, truth = _truth(device)
    generator = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        data = sample_states(truth.exact_log_prob(), 20_000, generator)
    noise = sample_states(_log_uniform(device), 200_000, generator)
    mle = LogLinearModel(features)
    fit(mle, lambda: mle_loss(mle, data))
    model = LogLinearModel(features)
    fit(model, lambda: nce_loss(model, data, noise, _log_uniform(device)))
    with torch.no_grad():
        assert float((model.theta - mle.theta).norm()) < 0.05
        assert float((model.theta - truth.theta).norm()) < 0.15
        assert abs(float(model.log_z - model.exact_log_partition())) < 0.03
        assert abs(float(model.log_z - truth.exact_log_partition())) < 0.1


def test_nce_loss_matches_its_definition_in_float64(device):
    features, truth = _truth(device)
    generator = torch.Generator(device=device).manual_seed(2)
    data = torch.randint(V, (30,), generator=generator, device=device)
    noise = torch.randint(V, (90,), generator=generator, device=device)  # nu = 3
    log_q = torch.log_softmax(torch.randn(V, generator=generator, device=device, dtype=torch.float64), dim=0)
    with torch.no_grad():
        truth.log_z.fill_(1.7)
        s_data = truth.energy(data) - 1.7 - math.log(3) - log_q[data]
        s_noise = truth.energy(noise) - 1.7 - math.log(3) - log_q[noise]
        expected = -torch.log(torch.sigmoid(s_data)).mean() - 3 * torch.log(1 - torch.sigmoid(s_noise)).mean()
        torch.testing.assert_close(nce_loss(truth, data, noise, log_q), expected)
        torch.testing.assert_close(nce_logit(truth, data, log_q, 3.0), s_data)
        # extreme logits stay finite (softplus form, no log(0))
        truth.log_z.fill_(-1e4)
        assert bool(torch.isfinite(nce_loss(truth, data, noise, log_q)))


def test_mle_matches_moments(device):
    """At the MLE of an exponential family the model's feature mean equals the data's."""
    features, truth = _truth(device)
    generator = torch.Generator(device=device).manual_seed(3)
    with torch.no_grad():
        data = sample_states(truth.exact_log_prob(), 5_000, generator)
    mle = LogLinearModel(features)
    fit(mle, lambda: mle_loss(mle, data))
    with torch.no_grad():
        model_mean = mle.exact_log_prob().exp() @ features
        torch.testing.assert_close(model_mean, features[data].mean(0), atol=1e-6, rtol=0)
