"""Gradient clipping: the two forms bound each other; on an (L0, L1)-smooth function GD diverges, clipped GD not."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.gradient_clipping import (DescentConfig, clip_gradient, clip_scale, cosh_objective,
                                           gradient_descent, optimal_step_size, smoothness_ratio)


def test_two_clipping_forms_bound_each_other(device):
    # $\frac12\min\{1,\gamma/\Vert g\Vert\} \le \gamma/(\Vert g\Vert+\gamma) \le \min\{1,\gamma/\Vert g\Vert\}$
    norms = torch.logspace(-8, 8, 20_001, dtype=torch.float64, device=device)
    for gamma in (1e-6, 1e-2, 1.0, 3.7, 1e5):
        s_min = clip_scale(norms, gamma, "min")
        s_smooth = clip_scale(norms, gamma, "smooth")
        assert (0.5 * s_min <= s_smooth).all() and (s_smooth <= s_min).all()
    # equality cases: the lower bound at |g| = gamma, the upper bound only in the limits
    assert clip_scale(torch.tensor(2.0), 2.0, "smooth").item() == 0.5 * clip_scale(torch.tensor(2.0), 2.0, "min").item()


def test_clipped_norm_is_bounded(device, generator):
    grads = torch.randn(1000, 17, generator=generator, dtype=torch.float64).to(device)  # CPU draw, moved
    grads = grads * torch.logspace(-3, 3, 1000, dtype=torch.float64, device=device)[:, None]
    for mode in ("min", "smooth"):
        clipped = clip_gradient(grads, 0.7, mode)
        norms = torch.linalg.vector_norm(clipped, dim=-1)
        assert (norms <= 0.7 * (1 + 1e-12)).all()
        # direction kept: cosine 1
        cos = torch.nn.functional.cosine_similarity(clipped, grads, dim=-1)
        torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-12)


def test_min_form_matches_torch_clip_grad_norm(device, generator):
    for scale in (0.01, 1.0, 100.0):
        g = torch.randn(50, generator=generator).to(device) * scale
        p = torch.nn.Parameter(torch.zeros(50, device=device))
        p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_([p], max_norm=1.5)
        torch.testing.assert_close(clip_gradient(g, 1.5, "min"), p.grad, rtol=1e-5, atol=1e-7)


def test_zero_gradient_and_bad_arguments(device):
    zero = torch.zeros(4, device=device)
    assert torch.equal(clip_gradient(zero, 1.0, "min"), zero)
    assert torch.equal(clip_gradient(zero, 1.0, "smooth"), zero)
    with pytest.raises(ValueError):
        clip_gradient(zero, 0.0, "min")
    with pytest.raises(ValueError):
        clip_gradient(zero, 1.0, "max")


def test_cosh_is_l0_l1_smooth_but_not_l_smooth(device):
    theta = torch.cartesian_prod(*[torch.linspace(-8, 8, 41, dtype=torch.float64, device=device)] * 2)
    hess_norm, grad_norm = smoothness_ratio(cosh_objective, theta)
    assert (hess_norm <= 1.0 + 1.0 * grad_norm + 1e-9).all()  # $L_0 = L_1 = 1$
    assert hess_norm.max().item() > 1000  # no global L: the Hessian grows without bound
    torch.testing.assert_close(hess_norm, torch.cosh(theta).amax(-1))


THETA0 = (4.0, -3.0)


def test_plain_gd_diverges_where_clipped_gd_converges(device):
    theta0 = torch.tensor(THETA0, dtype=torch.float64, device=device)
    _, plain = gradient_descent(cosh_objective, theta0, DescentConfig(lr=1.0, steps=30, mode="none"))
    assert math.isinf(plain[-1].item())
    assert plain[1].item() > 1e6 * plain[0].item()  # blows up after one step
    for mode in ("min", "smooth"):
        path, values = gradient_descent(cosh_objective, theta0, DescentConfig(lr=1.0, steps=30, mode=mode))
        assert values[-1].item() - 2.0 < 1e-10  # the minimum of cosh(x) + cosh(y) is 2
        assert torch.linalg.vector_norm(path[-1]).item() < 1e-4
        assert (values.diff() <= 1e-12).all()  # monotone decrease


def test_clipping_beats_the_largest_safe_fixed_rate(device):
    theta0 = torch.tensor(THETA0, dtype=torch.float64, device=device)
    rates = [0.02 * k for k in range(1, 50)]
    finals = [gradient_descent(cosh_objective, theta0, DescentConfig(lr=lr, steps=30))[1][-1].item()
              for lr in rates]
    best_plain = min(v - 2.0 for v in finals)
    _, clipped = gradient_descent(cosh_objective, theta0, DescentConfig(lr=1.0, steps=30, mode="min"))
    assert clipped[-1].item() - 2.0 < 1e-6 * best_plain


def test_optimal_step_is_the_smooth_clipping_form(device, generator):
    grad_norm = torch.rand(100, generator=generator, dtype=torch.float64).to(device) * 100
    l0, l1 = 2.0, 0.5
    # $\eta^* = \frac{1}{L_0}\cdot\frac{\gamma}{\Vert g\Vert + \gamma}$ with $\gamma = L_0/L_1$
    torch.testing.assert_close(optimal_step_size(grad_norm, l0, l1),
                               clip_scale(grad_norm, l0 / l1, "smooth") / l0, rtol=1e-14, atol=0)


def test_device_matches_cpu_float64(device, generator):
    # the same CPU-drawn start on both devices; float64 arithmetic of 20 clipped steps (cosh may differ by an
    # ulp between devices, and the clipped steps contract): agreement to 1e-10
    theta0 = 3 * torch.randn(2, generator=generator, dtype=torch.float64)
    for mode in ("min", "smooth"):
        config = DescentConfig(lr=1.0, steps=20, mode=mode)
        path_cpu, values_cpu = gradient_descent(cosh_objective, theta0, config)
        path_dev, values_dev = gradient_descent(cosh_objective, theta0.to(device), config)
        torch.testing.assert_close(path_dev.cpu(), path_cpu, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(values_dev.cpu(), values_cpu, rtol=1e-10, atol=1e-12)
