"""Even-order Taylor polynomials of exp are positive; Taylor softmax is a probability vector."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.taylor_softmax import (MAX_CRITICAL_ORDER, critical_points, exp_taylor, taylor_cross_entropy,
                                        taylor_softmax)

EVEN_ORDERS = list(range(2, MAX_CRITICAL_ORDER + 1, 2))


def naive_exp_taylor(x: torch.Tensor, n: int) -> torch.Tensor:
    """$\\sum_k x^k/k!$ term by term in float64, the reference for Horner's rule."""
    x = x.double().cpu()
    return sum(x ** k / math.factorial(k) for k in range(n + 1))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 17])
def test_horner_matches_naive_sum(device, n):
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64, device=device)
    torch.testing.assert_close(exp_taylor(x, n).cpu(), naive_exp_taylor(x, n), rtol=1e-12, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(exp_taylor(x32, n).cpu().double(), naive_exp_taylor(x32, n), rtol=1e-5, atol=1e-5)


def test_converges_to_exp(device):
    x = torch.linspace(-5, 5, 101, dtype=torch.float64, device=device)
    torch.testing.assert_close(exp_taylor(x, 60), x.exp(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", EVEN_ORDERS)
def test_positive_on_dense_grid(device, n):
    # the minimum sits near -0.28 n; the grid covers it with margin on both sides
    x = torch.linspace(-2.0 * n - 5, 5.0, 50_001, dtype=torch.float64, device=device)
    assert exp_taylor(x, n).min().item() > 0


@pytest.mark.parametrize("n", EVEN_ORDERS)
def test_value_at_every_critical_point_is_the_last_term(n):
    points = critical_points(n)
    assert points.numel() == 1  # f_{n-1} is increasing: exactly one real root
    x = points[0]
    assert abs(exp_taylor(x, n - 1).item()) < 1e-9  # it is a root of f_n' = f_{n-1}
    value = exp_taylor(x, n).item()
    # f_n(x) = f_{n-1}(x) + x^n/n! = x^n/n! > 0; cancellation limits the float64 agreement (see module)
    last_term = math.exp(n * math.log(abs(x.item())) - math.lgamma(n + 1))
    assert value > 0
    assert abs(value - last_term) <= 1e-6 * last_term
    # and it is the global minimum: no grid point goes lower
    grid = torch.linspace(-2.0 * n - 5, 5.0, 20_001, dtype=torch.float64)
    assert exp_taylor(grid, n).min().item() >= value * (1 - 1e-6)


@pytest.mark.parametrize("n", [3, 7, 15])
def test_odd_orders_have_no_critical_point_and_go_negative(n):
    assert critical_points(n).numel() == 0
    assert exp_taylor(torch.tensor(-float(n), dtype=torch.float64), n).item() < 0


def test_critical_points_rejects_bad_orders():
    for n in (0, 1, MAX_CRITICAL_ORDER + 2, 2.0, -2):
        with pytest.raises(ValueError):
            critical_points(n)


@pytest.mark.parametrize("n", [0, 2, 4, 8])
def test_taylor_softmax_is_a_probability_vector(device, generator, n):
    x = (torch.randn(3, 5, 7, generator=generator) * 4).to(device)
    for dim in (0, 1, -1):
        p = taylor_softmax(x, n, dim=dim)
        assert (p > 0).all()
        # float32 sum of <= 7 terms in (0, 1]: error <= 7 ulps of 1 (8.4e-7)
        torch.testing.assert_close(p.sum(dim), torch.ones_like(p.sum(dim)), rtol=1e-6, atol=1e-6)
    # float64 reference on the CPU
    p64 = naive_exp_taylor(x, n)
    torch.testing.assert_close(taylor_softmax(x, n).cpu().double(), p64 / p64.sum(-1, keepdim=True),
                               rtol=1e-5, atol=1e-6)


def test_taylor_softmax_order_preserving_for_nonnegative_logits(device):
    x = torch.tensor([0.0, 0.5, 1.0, 3.0], device=device)
    p = taylor_softmax(x, 2)
    assert (p.diff() > 0).all()
    # as the order grows it tends to softmax
    torch.testing.assert_close(taylor_softmax(x.double(), 40), torch.softmax(x.double(), -1), rtol=1e-10, atol=0)


@pytest.mark.parametrize("bad", [1, 3, -2, 2.0, True])
def test_taylor_softmax_rejects_odd_or_invalid_orders(device, bad):
    with pytest.raises(ValueError):
        taylor_softmax(torch.zeros(4, device=device), bad)


def test_taylor_cross_entropy_against_float64_formula(device, generator):
    logits = (torch.randn(6, 5, generator=generator) * 3).to(device).requires_grad_(True)
    target = torch.randint(0, 5, (6,), generator=generator).to(device)
    loss = taylor_cross_entropy(logits, target, n=2)
    f = naive_exp_taylor(logits.detach(), 2)
    expected = (f.sum(-1).log() - f[torch.arange(6), target.cpu()].log()).mean()
    torch.testing.assert_close(loss.detach().cpu().double(), expected, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
