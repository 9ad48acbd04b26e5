"""Invertible ResNet (article 31): Lip(g) < 1, geometric convergence of the inverse, log-det series."""
from __future__ import annotations


import pytest
import torch

from spaces_code.iresnet import (InvertibleResidualBlock, SpectralLinear, batch_jacobian, exact_log_det,
                                 logdet_power_series, series_log_det_from_jacobian)


def make_block(dim: int, seed: int, n_layers: int = 2, dtype=torch.float64, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    block = InvertibleResidualBlock(dim, hidden=8, n_layers=n_layers, coeff=0.9, generator=generator)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.endswith("weight"):
                # every singular value 2 > c: the normalisation is active and J_g is far from 0
                torch.nn.init.orthogonal_(p, gain=2.0, generator=generator)
            else:
                p.uniform_(0.0, 1.0, generator=generator)
    return block.to(device=device, dtype=dtype)


def test_weights_and_probes_depend_on_the_generator_alone(seed):
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        block = InvertibleResidualBlock(3, hidden=8, generator=torch.Generator().manual_seed(seed))
        x = torch.ones(2, 3)
        runs.append([*block.state_dict().values(),
                     block.log_det(x, n_terms=3, generator=torch.Generator().manual_seed(seed)).detach()])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


@pytest.mark.parametrize("dim", [1, 2, 5])
@pytest.mark.parametrize("n_layers", [2, 3])
def test_lipschitz_below_one(device, generator, seed, dim, n_layers):
    block = make_block(dim, seed + dim, n_layers=n_layers, device=device)
    bound = block.lipschitz_bound().item()
    # every normalised layer has spectral norm <= c, so Lip(g) <= c^L < 1
    assert bound <= 0.9 ** n_layers + 1e-9
    for m in block.g:
        if isinstance(m, SpectralLinear):
            assert torch.linalg.matrix_norm(m.normalized_weight(), ord=2).item() <= 0.9 + 1e-9
    a = torch.randn(2000, dim, generator=generator, dtype=torch.float64).to(device)
    b = a + 0.5 * torch.randn(2000, dim, generator=generator, dtype=torch.float64).to(device)
    with torch.no_grad():
        ratio = (block.g(a) - block.g(b)).norm(dim=-1) / (a - b).norm(dim=-1)
    assert ratio.max().item() <= bound + 1e-9
    jac_norms = torch.linalg.matrix_norm(batch_jacobian(block.g, a[:200]), ord=2)
    assert jac_norms.max().item() <= bound + 1e-9


@pytest.mark.parametrize("dim", [2, 7])
def test_fixed_point_inverse_converges_geometrically(device, generator, seed, dim):
    block = make_block(dim, seed + 10 + dim, device=device)
    lip = block.lipschitz_bound().item()
    x = 2 * torch.randn(64, dim, generator=generator, dtype=torch.float64).to(device)
    with torch.no_grad():
        y = block(x)
        iterates = block.inverse_iterates(y, n_iter=150)
    errors = (iterates - x).norm(dim=-1)  # (151, batch)
    # ||x_{n+1} - x|| <= Lip(g) ||x_n - x||, step by step and for every sample
    assert torch.all(errors[1:] <= lip * errors[:-1] + 1e-13)
    assert torch.all(errors[-1] <= lip ** 150 * errors[0] + 1e-13)
    assert errors[-1].max().item() < 1e-10


def test_inverse_float32_on_device_matches_cpu(device, generator, seed):
    x = torch.randn(32, 3, generator=generator)
    cpu_block = make_block(3, seed, dtype=torch.float32)
    dev_block = make_block(3, seed, dtype=torch.float32, device=device)
    with torch.no_grad():
        y_cpu, y_dev = cpu_block(x), dev_block(x.to(device))
        assert torch.allclose(y_dev.cpu(), y_cpu, atol=1e-5)
        assert (dev_block.inverse(y_dev, n_iter=60).cpu() - x).abs().max().item() < 1e-5


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_exact_log_det_equals_autograd_jacobian(generator, seed, dim):
    block = make_block(dim, seed + 20 + dim)
    x = torch.randn(5, dim, generator=generator, dtype=torch.float64)
    got = exact_log_det(block, x)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(block, x[i])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0  # I + J_g with ||J_g|| < 1 has a positive determinant
        assert abs(got[i].item() - logabs.item()) < 1e-12


def test_truncated_power_series_with_exact_traces(generator, seed):
    # the remainder of the series after N terms obeys the geometric bound below
    dim, n_terms = 4, 40
    block = make_block(dim, seed + 5)
    lip = block.lipschitz_bound().item()
    x = torch.randn(16, dim, generator=generator, dtype=torch.float64)
    series = series_log_det_from_jacobian(batch_jacobian(block.g, x), n_terms)  # (16,)
    # |remainder| <= sum_{n > N} d Lip^n / n <= d Lip^{N+1} / ((N+1)(1 - Lip))
    bound = dim * lip ** (n_terms + 1) / ((n_terms + 1) * (1 - lip))
    err = (series - exact_log_det(block, x)).abs()
    assert err.max().item() <= bound
    # orthogonal weights of gain 2, normalised to c = 0.9: Lip bound 0.81 exactly, so the test is not trivial
    assert lip >= 0.81 - 1e-9 and bound < 1e-3


def test_hutchinson_estimate_within_five_standard_errors(device, generator, seed):
    dim, n_terms, n_probes = 4, 30, 2000
    block = make_block(dim, seed + 6, device=device)
    x = torch.randn(4, dim, generator=generator, dtype=torch.float64).to(device)
    estimate = block.log_det(x, n_terms=n_terms, n_probes=n_probes, generator=generator)
    # the estimator is u^T P u with P = sum_n (-1)^{n-1} J^n / n: mean tr(P), variance 2 ||sym(P)||_F^2
    jac = batch_jacobian(block.g, x)
    power = torch.eye(dim, dtype=torch.float64, device=device).expand_as(jac)
    p_mat = torch.zeros_like(jac)
    for n in range(1, n_terms + 1):
        power = power @ jac
        p_mat = p_mat + (-1) ** (n - 1) / n * power
    sym = (p_mat + p_mat.transpose(-1, -2)) / 2
    std_err = torch.sqrt(2 * sym.square().sum((-1, -2)) / n_probes)
    lip = block.lipschitz_bound().item()
    truncation = dim * lip ** (n_terms + 1) / ((n_terms + 1) * (1 - lip))
    exact = exact_log_det(block, x)
    err = (estimate - exact).abs()
    # 5 standard errors of a mean of 2000 probes (CLT: P ~ 6e-7 per point); sweep of 200 seeds x 4 points:
    # max |err| / std_err = 3.9
    assert torch.all(err <= 5 * std_err + truncation), (err, std_err)
    # the tolerance is tight: Var(u^T P u) = 2 |sym P|_F^2 <= 2 d |P|_2^2 and |P|_2 <= -ln(1 - Lip)
    assert truncation < 2e-3 and lip >= 0.81 - 1e-9
    assert std_err.max().item() <= (2 * dim / n_probes) ** 0.5 * -torch.log1p(torch.tensor(-lip)).item()


def test_power_series_is_reproducible_with_a_generator(device, generator, seed):
    block = make_block(3, seed + 7, device=device)
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64).to(device)
    # a CPU generator draws the probes on CPU: the same estimate on every device, and twice the same
    runs = [logdet_power_series(block.g, x, 8, 3, torch.Generator().manual_seed(seed + 9)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    cpu = logdet_power_series(make_block(3, seed + 7).g, x.cpu(), 8, 3, torch.Generator().manual_seed(seed + 9))
    torch.testing.assert_close(runs[0].cpu(), cpu, rtol=1e-10, atol=1e-12)


def test_invalid_arguments(seed):
    with pytest.raises(ValueError):
        SpectralLinear(2, 2, coeff=1.0)
    block = make_block(2, seed)
    with pytest.raises(ValueError):
        block.log_det(torch.zeros(3, 2, dtype=torch.float64), n_terms=0)
