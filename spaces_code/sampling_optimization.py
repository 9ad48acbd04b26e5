r"""从采样看优化：可导优化与不可导优化的统一视角 — https://kexue.fm/archives/7521

Paper: Welleck & Cho, "MLE-guided parameter search for task loss minimization in neural sequence
modeling" (2020). The next update $\Delta\theta$ of parameters $\theta$ for an objective $l(\theta)$ is
drawn from

$$p(\Delta\theta|\theta)=\frac{e^{-[l(\theta + \Delta\theta) - l(\theta)]/\alpha}}{Z(\theta)}$$

which needs only values of $l$, never its gradient, so $l$ may be an accuracy, an error count or BLEU.
Here $\Delta\theta$ is restricted to a local ball $\|\Delta\theta\|\le\epsilon$ (the local proposal):
candidates are drawn uniformly in the ball and weighted by $e^{-\Delta l/\alpha}$ (self-normalised
importance sampling). As $\alpha\to 0$ the distribution concentrates on the minimiser of
$\Delta l\approx\Delta\theta\cdot\nabla_\theta l$ over the ball, $\Delta\theta=-\epsilon\,\nabla_\theta l/\|\nabla_\theta l\|$:
(normalised) gradient descent is the zero-temperature, local limit of this sampler.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]  # parameters (num, dim) -> objective values (num,)


def ball_proposals(num: int, dim: int, radius: float, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``num`` points ``(num, dim)`` uniform in the ball $\\|\\Delta\\theta\\| \\le$ ``radius``."""
    direction = torch.nn.functional.normalize(
        torch.randn(num, dim, generator=generator, device=device, dtype=dtype), dim=-1)
    # the radius of a uniform point in a d-ball is distributed as U^{1/d}
    length = radius * torch.rand(num, 1, generator=generator, device=device, dtype=dtype) ** (1 / dim)
    return direction * length


def step_weights(loss_fn: Objective, theta: Tensor, deltas: Tensor, alpha: float) -> Tensor:
    """Normalised weights ``(num,)`` $\\propto e^{-[l(\\theta+\\Delta\\theta)-l(\\theta)]/\\alpha}$ of the candidates.

    ``alpha = 0`` is the limit: all weight on the best candidate (ties shared).
    """
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    delta_loss = loss_fn(theta + deltas) - loss_fn(theta[None, :])  # (num,)
    # shifting by the best candidate keeps the largest logit at 0 for any alpha (no overflow)
    excess = delta_loss - delta_loss.min()
    if alpha == 0:
        best = (excess == 0).to(deltas.dtype)
        return best / best.sum()
    # $p(\Delta\theta|\theta) \propto e^{-[l(\theta + \Delta\theta) - l(\theta)]/\alpha}$
    return torch.softmax(-excess / alpha, dim=0)


def mean_step(loss_fn: Objective, theta: Tensor, alpha: float, radius: float, num_candidates: int = 1024,
              generator: torch.Generator | None = None) -> Tensor:
    """Monte Carlo estimate ``(dim,)`` of $\\mathbb{E}_{p(\\Delta\\theta|\\theta)}[\\Delta\\theta]$ on the ball."""
    deltas = ball_proposals(num_candidates, theta.shape[-1], radius, generator, theta.device, theta.dtype)
    weights = step_weights(loss_fn, theta, deltas, alpha)  # (num,)
    return weights @ deltas


def sample_step(loss_fn: Objective, theta: Tensor, alpha: float, radius: float, num_candidates: int = 64,
                generator: torch.Generator | None = None) -> Tensor:
    """One draw ``(dim,)`` from $p(\\Delta\\theta|\\theta)$ by sampling-importance-resampling of ball candidates."""
    deltas = ball_proposals(num_candidates, theta.shape[-1], radius, generator, theta.device, theta.dtype)
    weights = step_weights(loss_fn, theta, deltas, alpha)
    return deltas[torch.multinomial(weights, 1, generator=generator)[0]]


def minimize_by_sampling(loss_fn: Objective, theta: Tensor, steps: int, alpha: float, radius: float,
                         num_candidates: int = 64,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Iterate $\\theta \\leftarrow \\theta + \\Delta\\theta$, $\\Delta\\theta\\sim p(\\Delta\\theta|\\theta)$.

    Returns the path ``(steps + 1, dim)`` and the objective along it ``(steps + 1,)``; needs no gradient.
    """
    path = [theta]
    for _ in range(steps):
        theta = theta + sample_step(loss_fn, theta, alpha, radius, num_candidates, generator)
        path.append(theta)
    path_tensor = torch.stack(path)
    return path_tensor, loss_fn(path_tensor)


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine of the angle between two vectors (0 if either is zero)."""
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else 0.0


def zero_one_loss(features: Tensor, labels: Tensor) -> Objective:
    """Error rate of linear classifiers $\\mathrm{sign}(w\\cdot x + b)$: ``theta`` ``(num, dim + 1)`` -> ``(num,)``.

    Piecewise constant in $\\theta$: its gradient is zero wherever it exists, so gradient descent cannot move.
    """
    def loss(theta: Tensor) -> Tensor:
        scores = theta[:, :-1] @ features.T + theta[:, -1:]  # (num, n)
        return ((scores > 0).long() != labels).to(theta.dtype).mean(-1)
    return loss


def logistic_loss(features: Tensor, labels: Tensor) -> Objective:
    """Mean logistic loss of the same linear classifiers: a smooth surrogate with a true gradient."""
    def loss(theta: Tensor) -> Tensor:
        scores = theta[:, :-1] @ features.T + theta[:, -1:]  # (num, n)
        signs = 2 * labels.to(theta.dtype) - 1
        return torch.nn.functional.softplus(-signs * scores).mean(-1)
    return loss

