r"""为什么梯度裁剪能加速训练过程？一个简明的分析 — https://kexue.fm/archives/7469

Paper: J. Zhang, T. He, S. Sra, A. Jadbabaie, "Why gradient clipping accelerates training: A theoretical
justification for adaptivity", ICLR 2020 (arXiv:1905.11881).

Two forms of clipping the gradient descent step $\theta \leftarrow \theta - \eta\,\nabla_\theta f(\theta)\times s$:

$$s_{\min} = \min\Big\{1, \frac{\gamma}{\Vert\nabla_\theta f(\theta)\Vert}\Big\},\qquad
s_{\mathrm{smooth}} = \frac{\gamma}{\Vert\nabla_\theta f(\theta)\Vert + \gamma},\qquad
\frac{1}{2}s_{\min} \le s_{\mathrm{smooth}} \le s_{\min}.$$

$f$ is $(L_0, L_1)$-smooth when $\Vert\nabla^2 f(\theta)\Vert \le L_0 + L_1\Vert\nabla f(\theta)\Vert$. Then
$f(\theta + \Delta) \le f(\theta) + \nabla f^\top\Delta + \frac{1}{2}(L_0 + L_1\Vert\nabla f\Vert)\Vert\Delta\Vert^2$
for small steps, and the best step along $-\nabla f$ has

$$\eta^* = \frac{1}{L_0 + L_1\Vert\nabla f\Vert} = \frac{1}{L_0}\cdot\frac{\gamma}{\Vert\nabla f\Vert + \gamma},
\qquad \gamma = \frac{L_0}{L_1},$$

i.e. exactly the second clipping form: a fixed learning rate is either too small where the gradient is
small or divergent where it is large; clipping adapts the step to the local smoothness.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

ClipMode = Literal["none", "min", "smooth"]


def clip_scale(grad_norm: Tensor, gamma: float, mode: ClipMode) -> Tensor:
    r"""The factor $s$ multiplying the gradient.

    ``none``: 1; ``min``: $\min\{1, \gamma/\Vert g\Vert\}$; ``smooth``: $\gamma/(\Vert g\Vert+\gamma)$.
    """
    if gamma <= 0:
        raise ValueError(f"the clipping threshold gamma must be positive, got {gamma}")
    if mode == "none":
        return torch.ones_like(grad_norm)
    if mode == "min":
        # $\min\{1, \gamma/\Vert g\Vert\}$ (a zero gradient is left as it is)
        return torch.clamp(gamma / grad_norm, max=1.0)
    if mode == "smooth":
        # $\gamma / (\Vert g\Vert + \gamma)$
        return gamma / (grad_norm + gamma)
    raise ValueError(f"unknown clipping mode {mode!r}: use 'none', 'min' or 'smooth'")


def clip_gradient(grad: Tensor, gamma: float, mode: ClipMode = "min") -> Tensor:
    """Scale ``grad`` (d,) or a batch (..., d) of gradients by :func:`clip_scale` of its norm."""
    norm = torch.linalg.vector_norm(grad, dim=-1, keepdim=True)  # (..., 1)
    return grad * clip_scale(norm, gamma, mode)


def optimal_step_size(grad_norm: Tensor, l0: float, l1: float) -> Tensor:
    r"""$\eta^* = 1/(L_0 + L_1\Vert\nabla f\Vert)$, the minimiser of the $(L_0, L_1)$ quadratic upper bound."""
    return 1.0 / (l0 + l1 * grad_norm)


def gradient(f: Callable[[Tensor], Tensor], theta: Tensor, create_graph: bool = False) -> Tensor:
    r"""$\nabla f$ at each point of ``theta`` (..., d); ``f`` is batched: (..., d) -> (...)."""
    theta = theta if theta.requires_grad else theta.detach().requires_grad_(True)
    return torch.autograd.grad(f(theta).sum(), theta, create_graph=create_graph)[0]


def smoothness_ratio(f: Callable[[Tensor], Tensor], theta: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(\Vert\nabla^2 f(\theta)\Vert_2, \Vert\nabla f(\theta)\Vert)$ at each point of ``theta`` (n, d).

    Used to check $\Vert\nabla^2 f\Vert \le L_0 + L_1\Vert\nabla f\Vert$ numerically; ``f`` is batched.
    """
    theta = theta.detach().requires_grad_(True)
    grads = gradient(f, theta, create_graph=True)  # (n, d)
    # row i of every Hessian: $\nabla (\partial_i f)$, one backward pass per coordinate
    rows = [torch.autograd.grad(grads[:, i].sum(), theta, retain_graph=True)[0] for i in range(theta.shape[-1])]
    hessians = torch.stack(rows, dim=-2)  # (n, d, d)
    return torch.linalg.matrix_norm(hessians, ord=2), torch.linalg.vector_norm(grads.detach(), dim=-1)


@dataclass
class DescentConfig:
    lr: float = 1.0  # $\eta$
    steps: int = 30
    mode: ClipMode = "none"
    gamma: float = 1.0  # clipping threshold $\gamma$


def gradient_descent(f: Callable[[Tensor], Tensor], theta0: Tensor, config: DescentConfig) -> tuple[Tensor, Tensor]:
    r"""Run $\theta \leftarrow \theta - \eta\, s\, \nabla f(\theta)$; return the path (steps+1, d) and $f$ (steps+1,).

    Once $\theta$ or $f(\theta)$ stops being finite (divergence), the rest of the path is filled with
    ``inf`` rather than NaN so that plots and tests can read "diverged".
    """
    path, values = [theta0], [f(theta0).detach()]
    theta = theta0
    for _ in range(config.steps):
        diverged = not bool(torch.isfinite(theta).all() and torch.isfinite(values[-1]))
        if diverged:
            theta = torch.full_like(theta, float("inf"))
            path.append(theta)
            values.append(torch.full_like(values[-1], float("inf")))
            continue
        g = gradient(f, theta)  # (d,)
        # $\theta \leftarrow \theta - \eta\, s(\Vert g\Vert)\, g$
        theta = theta - config.lr * clip_gradient(g, config.gamma, config.mode)
        path.append(theta)
        values.append(f(theta).detach())
    return torch.stack(path), torch.stack(values)


def cosh_objective(theta: Tensor) -> Tensor:
    r"""$f(\theta) = \sum_i \cosh\theta_i$: not $L$-smooth, but $(1, 1)$-smooth.

    $\nabla^2 f = \mathrm{diag}(\cosh\theta_i)$ and $\cosh t \le 1 + |\sinh t|$, so
    $\Vert\nabla^2 f\Vert \le 1 + \Vert\nabla f\Vert$: $L_0 = L_1 = 1$. Minimum $f = d$ at $\theta = 0$.
    """
    return torch.cosh(theta).sum(-1)
