"""NICE (article 27): exact inverse, log-det equal to the autograd Jacobian, normalised density."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.nice import NICE, AdditiveCoupling


def random_nice(dim: int, seed: int, dtype=torch.float32, device="cpu") -> NICE:
    generator = torch.Generator().manual_seed(seed)
    model = NICE(dim, n_couplings=4, hidden=32, generator=generator)
    with torch.no_grad():
        # larger shifts and a non-trivial scale, so that the test is not near the identity
        for p in model.couplings.parameters():
            p.mul_(2.0)
        model.log_scale.copy_(0.4 * torch.randn(dim, generator=generator))
    return model.to(device=device, dtype=dtype)


def test_weights_and_samples_depend_on_the_generator_alone(seed):
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        model = NICE(3, n_couplings=2, hidden=8, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            runs.append([*model.state_dict().values(), model.sample(5, torch.Generator().manual_seed(seed))])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


@pytest.mark.parametrize("dim", [2, 3, 5, 8])
def test_inverse_is_exact_float32(device, generator, seed, dim):
    model = random_nice(dim, seed, device=device)
    x = torch.randn(256, dim, generator=generator).to(device)
    with torch.no_grad():
        z, _ = model(x)
        # NICE inverts exactly: only float32 rounding remains (sweep of 200 seeds: max 1.4e-5; bound 1e-4)
        assert (model.inverse(z) - x).abs().max().item() < 1e-4
        assert (model(model.inverse(z))[0] - z).abs().max().item() < 1e-4


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_log_det_equals_autograd_jacobian(generator, seed, dim):
    model = random_nice(dim, seed + dim, dtype=torch.float64)
    x = torch.randn(6, dim, generator=generator, dtype=torch.float64)
    _, log_det = model(x)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: model(v)[0], x[i])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0
        assert abs(logabs.item() - log_det[i].item()) < 1e-12


def test_coupling_alone_has_unit_determinant(generator):
    layer = AdditiveCoupling(5, hidden=16, shift_first=True, generator=generator).double()
    x = torch.randn(5, generator=generator, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(layer, x)
    assert abs(torch.linalg.det(jac).item() - 1) < 1e-12
    assert torch.allclose(layer.inverse(layer(x)), x, atol=1e-14)


def test_density_integrates_to_one(seed):
    model = random_nice(2, seed, dtype=torch.float64)
    # midpoint rule on [-L, L]^2 (a 600-point grid changes the sum by < 1e-9), plus the mass outside the
    # box, estimated from exact samples x = f^{-1}(z): the shifts and scales are random, so that mass is
    # not negligible for every stream (up to 8e-3 in a sweep of 40 seeds)
    m, half, n = 300, 14.0, 200_000
    t = (torch.arange(m, dtype=torch.float64) + 0.5) * (2 * half / m) - half
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1)  # (m, m, 2)
    with torch.no_grad():
        inside = torch.exp(model.log_prob(grid)).sum().item() * (2 * half / m) ** 2
        samples = model.sample(n, torch.Generator().manual_seed(seed + 1))
    outside = (samples.abs() > half).any(-1).double().mean().item()
    # sweep of 200 seeds: max |inside + outside - 1| / (1e-4 + 5 SE) = 1.8, so this bound has a 3.3x margin
    # (a wrong log-det, e.g. without sum log s, changes the integral by a factor e^{sum log s})
    assert abs(inside + outside - 1) < 2e-3 + 30 * (max(outside, 1 / n) / n) ** 0.5


def test_log_prob_formula_and_batch_dims(device, generator, seed):
    model = random_nice(3, seed, device=device)
    x = torch.randn(2, 4, 3, generator=generator).to(device)
    with torch.no_grad():
        z, log_det = model(x)
        expected = -1.5 * math.log(2 * math.pi) - 0.5 * (z ** 2).sum(-1) + model.log_scale.sum()
        assert log_det.shape == (2, 4)
        assert torch.allclose(model.log_prob(x), expected, atol=1e-5)
        assert torch.allclose(model.log_prob(x).reshape(-1), model.log_prob(x.reshape(-1, 3)), atol=1e-6)


def test_device_matches_cpu(device, generator, seed):
    cpu_model = random_nice(4, seed)
    dev_model = random_nice(4, seed, device=device)
    x = torch.randn(64, 4, generator=generator)
    with torch.no_grad():
        z_cpu, ld_cpu = cpu_model(x)
        z_dev, ld_dev = dev_model(x.to(device))
    assert torch.allclose(z_dev.cpu(), z_cpu, atol=1e-5)
    assert torch.allclose(ld_dev.cpu(), ld_cpu, atol=1e-6)


def test_sample_is_inverse_of_prior_draw(device, seed):
    model = random_nice(3, seed, device=device)
    with torch.no_grad():
        # a CPU generator draws on CPU, the sample is on the model's device: the same numbers everywhere
        x = model.sample(100, torch.Generator().manual_seed(seed + 5))
        assert x.device.type == device.type
        z = torch.randn(100, 3, generator=torch.Generator().manual_seed(seed + 5)).to(device)
        assert torch.allclose(model(x)[0], z, atol=1e-5)


def test_training_lowers_nll(generator):
    x = torch.randn(512, 2, generator=generator) * torch.tensor([0.3, 2.0]) + torch.tensor([1.0, -1.0])
    model = NICE(2, n_couplings=2, hidden=16, generator=generator)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    start = -model.log_prob(x).mean().item()
    for _ in range(100):
        opt.zero_grad()
        loss = -model.log_prob(x).mean()
        loss.backward()
        opt.step()
    # the exact NLL of this Gaussian is 1 + log(2 pi) + log(0.3 * 2) = 2.327; sweep of 200 seeds: start
    # min 4.13, end max 2.425 (excess 0.098, bound 0.35)
    assert start - loss.item() > 0.5 and loss.item() < 2.327 + 0.35


def test_rejects_one_dimension():
    with pytest.raises(ValueError):
        NICE(1)
