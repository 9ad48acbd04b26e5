r"""WGAN的成功，可能跟Wasserstein距离没啥关系 — https://kexue.fm/archives/8244

Companion to Stanczuk, Etmann, Kreusser & Schönlieb, "Wasserstein GANs Work Because They Fail
(to Approximate the Wasserstein Distance)" (2021), and Arjovsky et al. / Gulrajani et al. for WGAN and
WGAN-GP. The critic of a WGAN maximises the Kantorovich–Rubinstein dual

$$W(p, q) = \sup_{\Vert f\Vert_L\le 1} \mathbb{E}_{x\sim p}[f(x)] - \mathbb{E}_{x\sim q}[f(x)],$$

with the Lipschitz constraint imposed by weight clipping or by the gradient penalty
$\lambda\,\mathbb{E}_{\hat{x}}\big[(\Vert\nabla_{\hat{x}} f(\hat{x})\Vert - 1)^2\big]$. In one dimension the
distance itself is exact and cheap, from sorted samples (quantile functions) or from the CDFs:

$$W_1(p, q) = \int_0^1 \big|F_p^{-1}(u) - F_q^{-1}(u)\big|\,du = \int_{\mathbb{R}} \big|F_p(t) - F_q(t)\big|\,dt,$$

and an optimal critic is $f^*(t) = \int^t \mathrm{sign}\big(F_q(s) - F_p(s)\big)\,ds$. Comparing the
trained critic's value with this exact number shows what the critic actually estimates.

The article's point: a better estimate of $W_1$ does not make a better generator. A generator only ever
sees batches, and the exact batch distance is biased, $\mathbb{E}\,W_1(\hat p_B, \hat q_B) \ge W_1(p, q)$
(convexity), with a bias $\propto 1/\sqrt{B}$ in one dimension. A critic trained to convergence on each batch
*is* the batch's Kantorovich potential, whose value is exactly $W_1(\hat p_B, \hat q_B)$ (strong duality).
Minimising it over a location-scale generator $g(z) = a z + b$ gives $a^*(B) < 1$: the generator that
wins on the batch distance is under-dispersed (the 1-D face of the "blurry mean images" of the paper),
while its true $W_1$ is far from 0.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from spaces_code.randomness import init_parameters_, rand, randn


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
    r"""An optimal 1-Lipschitz critic $f^*$ for samples ``x`` (..., n) vs ``y`` (..., m), evaluated at ``t`` (..., k).

    $f^{*\prime}(t) = \mathrm{sign}(F_y(t) - F_x(t))$, so that $\mathbb{E}_x f^* - \mathbb{E}_y f^* = W_1$. Leading
    dimensions are independent problems. Differentiable in ``t`` (slope $\pm 1$ or 0), not in ``x``, ``y``.
    """
    knots = torch.cat([x, y], -1).sort(-1).values  # (..., n + m)
    f_x = torch.searchsorted(x.sort(-1).values, knots, right=True).to(x.dtype) / x.shape[-1]
    f_y = torch.searchsorted(y.sort(-1).values, knots, right=True).to(x.dtype) / y.shape[-1]
    slope = torch.sign(f_y - f_x)  # on [knot_k, knot_{k+1})
    # f*(knot_k) = sum_{j<k} slope_j (knot_{j+1} - knot_j), f*(knot_0) = 0
    values = torch.cat([knots.new_zeros(*knots.shape[:-1], 1),
                        torch.cumsum(slope[..., :-1] * torch.diff(knots, dim=-1), -1)], -1)
    k = (torch.searchsorted(knots, t.contiguous(), right=True) - 1).clamp(min=0)  # (..., k)
    # left of the data the CDFs agree (both 0): slope 0; right of it both are 1: slope 0 again
    inside = t >= knots[..., :1]
    ramp = slope.gather(-1, k) * (t - knots.gather(-1, k))
    return values.gather(-1, k) + torch.where(inside, ramp, torch.zeros_like(t))


class Critic(nn.Module):
    r"""A small MLP critic $f: \mathbb{R}^d \to \mathbb{R}$, its weights drawn from ``generator``."""

    def __init__(self, dim: int = 1, hidden: int = 64, generator: torch.Generator | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))
        init_parameters_(self, generator)

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
    eps = rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator, device=real.device,
               dtype=real.dtype)  # drawn on the generator's device, then moved to the data's
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # (batch, d)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


@torch.no_grad()
def clip_weights_(critic: nn.Module, clip: float) -> None:
    """WGAN's original constraint: every parameter clamped into $[-c, c]$, in place."""
    for p in critic.parameters():
        p.clamp_(-clip, clip)


# --------------------------------------------------------------------------------------------------
# A better W1 estimate is not a better generator: the exact batch distance as a loss.

def expected_batch_w1(real: Tensor, fake: Tensor) -> Tensor:
    r"""$\frac{1}{K}\sum_k W_1(\hat p_B^{(k)}, \hat q_B^{(k)})$ over K batches ``real`` (K, B), ``fake`` (K, B')."""
    return wasserstein1_1d(real, fake).mean()


class LocationScale(NamedTuple):
    scale: Tensor  # $a$ per step (steps + 1,)
    shift: Tensor  # $b$ per step (steps + 1,)
    batch_w1: Tensor  # the loss: mean exact batch $W_1$ per step (steps,)


def fit_location_scale(sample_real, batch: int, steps: int, scale: float = 1.0, shift: float = 0.0,
                       batches_per_step: int = 256, lr: float = 0.05,
                       generator: torch.Generator | None = None) -> LocationScale:
    r"""Fit $g(z) = a z + b$, $z\sim\mathcal{N}(0, 1)$, by Adam on the exact batch $W_1$ between batches of size B.

    ``sample_real(shape, generator)`` draws real data. Each step averages ``batches_per_step`` independent
    batch pairs (same expectation $\mathbb{E}\,W_1(\hat p_B, \hat q_B)$, less noise); the learning rate decays
    as $1/\sqrt{t}$ so that the iterate settles at the minimiser $a^*(B)$, $b^*(B)$.
    """
    params = torch.tensor([scale, shift], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([params], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t) ** 0.5)
    path, losses = [params.detach().clone()], []
    for _ in range(steps):
        real = sample_real((batches_per_step, batch), generator).to(torch.float64)  # (K, B)
        z = randn(batches_per_step, batch, generator=generator, dtype=torch.float64)  # (K, B)
        # $g(z) = a z + b$
        loss = expected_batch_w1(real, params[0] * z + params[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        path.append(params.detach().clone())
        losses.append(loss.detach())
    path_t = torch.stack(path)
    return LocationScale(path_t[:, 0], path_t[:, 1], torch.stack(losses))
