r"""WGAN的成功，可能跟Wasserstein距离没啥关系 — https://kexue.fm/archives/8244

Companion to Stanczuk, Etmann, Kreusser & Schönlieb, "Wasserstein GANs Work Because They Fail
(to Approximate the Wasserstein Distance)" (2021), and Arjovsky et al. / Gulrajani et al. for WGAN and
WGAN-GP. The critic of a WGAN maximises the Kantorovich–Rubinstein dual

.. math::

    W(p, q) = \sup_{\Vert f\Vert_L\le 1} \mathbb{E}_{x\sim p}[f(x)] - \mathbb{E}_{x\sim q}[f(x)],

with the Lipschitz constraint imposed by weight clipping or by the gradient penalty
$\lambda\,\mathbb{E}_{\hat{x}}\big[(\Vert\nabla_{\hat{x}} f(\hat{x})\Vert - 1)^2\big]$. In one dimension the
distance itself is exact and cheap, from sorted samples (quantile functions) or from the CDFs:

.. math::

    W_1(p, q) = \int_0^1 \big|F_p^{-1}(u) - F_q^{-1}(u)\big|\,du = \int_{\mathbb{R}} \big|F_p(t) - F_q(t)\big|\,dt,

and an optimal critic is $f^*(t) = \int^t \mathrm{sign}\big(F_q(s) - F_p(s)\big)\,ds$. Comparing the
trained critic's value with this exact number shows what the critic actually estimates.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def wasserstein1_1d(x: Tensor, y: Tensor) -> Tensor:
    r"""Exact $W_1$ between the empirical distributions of ``x`` (..., n) and ``y`` (..., m): shape (...,).

    Equal sizes: the mean of $|x_{(i)} - y_{(i)}|$ over sorted samples. Otherwise the quantile functions
    are step functions with jumps at $i/n$ and $j/m$, integrated exactly between the merged jumps.
    """
    if x.shape[-1] == 0 or y.shape[-1] == 0:
        raise ValueError("both sample sets must be non-empty")
    x_sorted, y_sorted = torch.sort(x, dim=-1).values, torch.sort(y, dim=-1).values
    n, m = x.shape[-1], y.shape[-1]
    if n == m:
        # W_1 = 1/n sum_i |x_(i) - y_(i)|
        return (x_sorted - y_sorted).abs().mean(-1)
    dtype = x_sorted.dtype
    u = torch.cat([torch.arange(1, n + 1, device=x.device, dtype=torch.float64) / n,
                   torch.arange(1, m + 1, device=x.device, dtype=torch.float64) / m]).sort().values
    widths = torch.diff(u, prepend=u.new_zeros(1))  # (n + m,), some zero
    mid = u - widths / 2
    # on (u_{k-1}, u_k] the quantile F^{-1}(u) is the ceil(u n)-th order statistic
    ix = (mid * n).long().clamp(max=n - 1)
    iy = (mid * m).long().clamp(max=m - 1)
    gap = (x_sorted[..., ix] - y_sorted[..., iy]).abs()  # (..., n + m)
    return (gap * widths.to(dtype)).sum(-1)


def kantorovich_potential_1d(x: Tensor, y: Tensor, t: Tensor) -> Tensor:
    r"""An optimal 1-Lipschitz critic $f^*$ for samples ``x`` (n,) vs ``y`` (m,), evaluated at ``t`` (k,).

    $f^{*\prime}(t) = \mathrm{sign}(F_y(t) - F_x(t))$, so that $\mathbb{E}_x f^* - \mathbb{E}_y f^* = W_1$.
    """
    knots = torch.cat([x, y]).sort().values  # (n + m,)
    f_x = torch.searchsorted(x.sort().values, knots, right=True).to(x.dtype) / x.numel()
    f_y = torch.searchsorted(y.sort().values, knots, right=True).to(x.dtype) / y.numel()
    slope = torch.sign(f_y - f_x)  # on [knot_k, knot_{k+1})
    # f*(knot_k) = sum_{j<k} slope_j (knot_{j+1} - knot_j), f*(knot_0) = 0
    values = torch.cat([knots.new_zeros(1), torch.cumsum(slope[:-1] * torch.diff(knots), 0)])
    k = (torch.searchsorted(knots, t, right=True) - 1).clamp(min=0)
    # left of the data the CDFs agree (both 0): slope 0; right of it both are 1: slope 0 again
    inside = t >= knots[0]
    return values[k] + torch.where(inside, slope[k] * (t - knots[k]), torch.zeros_like(t))


class Critic(nn.Module):
    r"""A small MLP critic $f: \mathbb{R}^d \to \mathbb{R}$."""

    def __init__(self, dim: int = 1, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def critic_gap(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    r"""$\mathbb{E}_{x\sim p}[f(x)] - \mathbb{E}_{x\sim q}[f(x)]$: the critic's estimate of $W_1$."""
    return critic(real).mean() - critic(fake).mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    r"""$\mathbb{E}_{\hat{x}}[(\Vert\nabla_{\hat{x}} f(\hat{x})\Vert - 1)^2]$ (WGAN-GP).

    $\hat{x} = \epsilon x_{real} + (1-\epsilon) x_{fake}$ with $\epsilon\sim U(0, 1)$ per sample.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator, device=real.device,
                     dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # (batch, d)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


@torch.no_grad()
def clip_weights_(critic: nn.Module, clip: float) -> None:
    """WGAN's original constraint: every parameter clamped into $[-c, c]$, in place."""
    for p in critic.parameters():
        p.clamp_(-clip, clip)
