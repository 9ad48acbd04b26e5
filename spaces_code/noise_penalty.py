r"""泛化性乱弹：从随机噪声、梯度惩罚到虚拟对抗训练 — https://kexue.fm/archives/7466

Input noise as a regulariser (Bishop, "Training with Noise is Equivalent to Tikhonov Regularization",
Neural Computation 1995), the starting point of the article's path to gradient penalty and virtual
adversarial training (Miyato et al., arXiv:1704.03976).

For Gaussian noise $\varepsilon\sim\mathcal{N}(0, \sigma^2 I)$ the second-order Taylor expansion of the
loss gives (odd moments vanish, $\mathbb{E}[\varepsilon\varepsilon^\top] = \sigma^2 I$)

$$\mathbb{E}_\varepsilon[l(x + \varepsilon)] \approx l(x) + \frac{1}{2}\sigma^2\,\mathrm{tr}\,\nabla_x^2 l(x),$$

with an error $O(\sigma^4)$. For a squared loss $l = (f(x) - y)^2$,
$\mathrm{tr}\,\nabla_x^2 l = 2\Vert\nabla_x f\Vert^2 + 2(f(x) - y)\,\Delta_x f$, so near a fit ($f\approx y$)
noise is a gradient penalty $\sigma^2\Vert\nabla_x f\Vert^2$.

Loss functions here are batched: they map inputs (..., d) to losses (...); ``x`` is one point (d,).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from spaces_code.randomness import randint, randn

LossFn = Callable[[Tensor], Tensor]


class MonteCarloEstimate(NamedTuple):
    mean: Tensor
    stderr: Tensor  # standard error of ``mean``


def _gradient_rows(loss_fn: LossFn, x: Tensor, copies: int) -> tuple[Tensor, Tensor]:
    """``copies`` independent copies of ``x`` (copies, d) and the loss gradient at each, kept differentiable."""
    rows = x.detach().expand(copies, x.shape[-1]).clone().requires_grad_(True)  # (copies, d)
    grad = torch.autograd.grad(loss_fn(rows).sum(), rows, create_graph=True)[0]  # (copies, d)
    return rows, grad


def hessian_trace(loss_fn: LossFn, x: Tensor) -> Tensor:
    r"""$\mathrm{tr}\,\nabla_x^2 l(x) = \sum_i \partial^2 l/\partial x_i^2$ for one point ``x`` (d,).

    Row $i$ of a (d, d) batch of copies differentiates $\partial l/\partial x_i$ only: one double backward.
    """
    rows, grad = _gradient_rows(loss_fn, x, x.shape[-1])
    second = torch.autograd.grad(grad.diagonal().sum(), rows)[0]  # row i: $\partial_i \nabla l$
    return second.diagonal().sum().detach()


def hutchinson_trace(loss_fn: LossFn, x: Tensor, n_probes: int = 64,
                     generator: torch.Generator | None = None) -> MonteCarloEstimate:
    r"""Hutchinson: $\mathrm{tr}\,H \approx \frac{1}{K}\sum_k v_k^\top H v_k$, Rademacher $v_k$, no full Hessian."""
    signs = randint(0, 2, (n_probes, x.shape[-1]), generator=generator, device=x.device)
    probes = signs.to(x.dtype) * 2 - 1  # (K, d)
    rows, grad = _gradient_rows(loss_fn, x, n_probes)
    hvp = torch.autograd.grad((grad * probes).sum(), rows)[0]  # (K, d) row k: $H v_k$
    # $v_k^\top H v_k$
    values = (hvp * probes).sum(-1).detach()  # (K,)
    return MonteCarloEstimate(values.mean(), values.std() / n_probes ** 0.5)


def noisy_loss(loss_fn: LossFn, x: Tensor, sigma: float, n_samples: int = 10_000,
               generator: torch.Generator | None = None) -> MonteCarloEstimate:
    r"""Monte Carlo $\mathbb{E}_{\varepsilon\sim\mathcal{N}(0,\sigma^2 I)}[l(x + \varepsilon)]$ with antithetic pairs.

    Each sample averages $l(x+\varepsilon)$ and $l(x-\varepsilon)$: the odd Taylor terms cancel exactly, which
    removes most of the variance without biasing the estimate ($\pm\varepsilon$ have the same law).
    """
    eps = sigma * randn(n_samples, x.shape[-1], generator=generator, device=x.device, dtype=x.dtype)
    with torch.no_grad():
        pairs = 0.5 * (loss_fn(x + eps) + loss_fn(x - eps))  # (n_samples,)
    return MonteCarloEstimate(pairs.mean(), pairs.std() / n_samples ** 0.5)


def hessian(loss_fn: LossFn, x: Tensor) -> Tensor:
    r"""The full Hessian $\nabla_x^2 l(x)$ (d, d) of one point ``x`` (d,), by one double backward over d copies."""
    rows, grad = _gradient_rows(loss_fn, x, x.shape[-1])
    return torch.autograd.grad(grad.diagonal().sum(), rows)[0].detach()


def noise_remainder(loss_fn: LossFn, x: Tensor, sigma: float, n_samples: int = 4096,
                    generator: torch.Generator | None = None) -> MonteCarloEstimate:
    r"""Monte Carlo $\mathbb{E}[l(x+\varepsilon)] - l(x) - \frac{1}{2}\sigma^2\mathrm{tr}\,\nabla^2 l(x)$, the $O(\sigma^4)$ rest.

    With $\varepsilon = \sigma u$ each sample is $\frac{1}{2}[l(x+\sigma u) + l(x-\sigma u)] - l(x) - \frac{1}{2}\sigma^2
    u^\top H u$: unbiased ($\mathbb{E}\,u^\top H u = \mathrm{tr}\,H$), and $O(\sigma^4)$ sample by sample, so the
    Monte Carlo noise shrinks with $\sigma^4$ too and the remainder's scaling is visible at any sign.
    """
    u = randn(n_samples, x.shape[-1], generator=generator, device=x.device, dtype=x.dtype)  # (n, d)
    h = hessian(loss_fn, x)  # (d, d)
    with torch.no_grad():
        # $\frac{1}{2}[l(x+\sigma u) + l(x-\sigma u)] - l(x) - \frac{1}{2}\sigma^2 u^\top H u$
        rest = (0.5 * (loss_fn(x + sigma * u) + loss_fn(x - sigma * u)) - loss_fn(x)
                - 0.5 * sigma ** 2 * ((u @ h) * u).sum(-1))  # (n,)
    return MonteCarloEstimate(rest.mean(), rest.std() / n_samples ** 0.5)


def second_order_noisy_loss(loss_fn: LossFn, x: Tensor, sigma: float) -> Tensor:
    r"""$l(x) + \frac{1}{2}\sigma^2\,\mathrm{tr}\,\nabla_x^2 l(x)$."""
    # $l(x) + \frac{1}{2}\sigma^2 \mathrm{tr}\nabla_x^2 l(x)$
    return loss_fn(x) + 0.5 * sigma ** 2 * hessian_trace(loss_fn, x)


class SquaredLossNoiseTerms(NamedTuple):
    loss: Tensor  # $(f(x) - y)^2$
    gradient_penalty: Tensor  # $\sigma^2\Vert\nabla_x f\Vert^2$
    curvature_term: Tensor  # $\sigma^2 (f(x) - y)\Delta_x f$


def squared_loss_noise_terms(f: LossFn, x: Tensor, y: Tensor, sigma: float) -> SquaredLossNoiseTerms:
    r"""Split $\frac{1}{2}\sigma^2\mathrm{tr}\nabla_x^2 (f - y)^2$ into a gradient penalty and a curvature term.

    $\frac{1}{2}\sigma^2\,\mathrm{tr}\,\nabla_x^2(f-y)^2 = \sigma^2\Vert\nabla_x f\Vert^2 + \sigma^2(f - y)\Delta_x f$;
    the sum of the three fields equals :func:`second_order_noisy_loss` of $(f - y)^2$.
    """
    point = x.detach().requires_grad_(True)
    value = f(point)
    grad = torch.autograd.grad(value, point)[0]  # (d,)
    residual = value.detach() - y
    laplacian = hessian_trace(f, x)
    # $\sigma^2\Vert\nabla_x f\Vert^2$ and $\sigma^2(f-y)\Delta_x f$
    return SquaredLossNoiseTerms(residual ** 2, sigma ** 2 * grad @ grad, sigma ** 2 * residual * laplacian)


def mlp_function(weights: list[tuple[Tensor, Tensor]]) -> LossFn:
    r"""A smooth scalar MLP $x \mapsto W_L\tanh(\cdots\tanh(W_1 x + b_1)\cdots) + b_L$ from (W, b) pairs."""
    def f(x: Tensor) -> Tensor:
        h = x  # (..., d)
        for w, b in weights[:-1]:
            h = torch.tanh(h @ w.T + b)  # (..., hidden)
        w, b = weights[-1]
        return (h @ w.T + b).squeeze(-1)  # (...)
    return f


def random_mlp_weights(sizes: list[int], generator: torch.Generator | None = None,
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float64) -> list[tuple[Tensor, Tensor]]:
    r"""Weights $\mathcal{N}(0, 1/\text{fan-in})$, biases $\mathcal{N}(0, 0.1^2)$, for :func:`mlp_function`."""
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = randn(fan_out, fan_in, generator=generator, device=device, dtype=dtype) / fan_in ** 0.5
        b = 0.1 * randn(fan_out, generator=generator, device=device, dtype=dtype)
        weights.append((w, b))
    return weights


def fit_mlp(weights: list[tuple[Tensor, Tensor]], x: Tensor, y: Tensor, steps: int = 2000,
            lr: float = 1e-2) -> list[tuple[Tensor, Tensor]]:
    r"""Full-batch Adam on $\frac{1}{n}\sum_i (f(x_i) - y_i)^2$ from ``weights``; returns the trained weights."""
    params = [t.detach().clone().requires_grad_(True) for pair in weights for t in pair]
    opt = torch.optim.Adam(params, lr=lr)
    pairs = list(zip(params[::2], params[1::2]))
    f = mlp_function(pairs)
    for _ in range(steps):
        loss = (f(x) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [(w.detach(), b.detach()) for w, b in pairs]
