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

The paper's contribution is the proposal. Uniform candidates in a ball find a descent direction of a
$d$-parameter model only by luck (a random direction has $\cos\approx\pm 1/\sqrt d$ with any given
one), so on a model with 100+ parameters unguided sampling stalls. MLE-guided search draws candidates
from a mixture that puts half of them around the gradient step of the differentiable MLE loss
$L_{\text{MLE}}$ (here the logistic loss of a classifier whose task loss is its error rate):

$$q(\Delta\theta|\theta) = \pi\,\mathcal N(0, \sigma^2 I)
   + (1-\pi)\,\mathcal N(-\eta\nabla_\theta L_{\text{MLE}}(\theta), \sigma^2 I),$$

and still weights them by the task loss alone, $e^{-\Delta l/\alpha}$. Resampling $K$ candidates of $q$
with these weights draws (as $K\to\infty$) from $\propto q(\Delta\theta|\theta)\,e^{-\Delta l/\alpha}$: the
MLE gradient says where to look, the task loss decides where to go (:func:`guided_search`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from spaces_code import randomness

Objective = Callable[[Tensor], Tensor]  # parameters (num, dim) -> objective values (num,)


def ball_proposals(num: int, dim: int, radius: float, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``num`` points ``(num, dim)`` uniform in the ball $\\|\\Delta\\theta\\| \\le$ ``radius``.

    Drawn on the generator's device and moved to ``device`` (default: the generator's device).
    """
    direction = torch.nn.functional.normalize(
        randomness.randn(num, dim, generator=generator, device=device, dtype=dtype), dim=-1)
    # the radius of a uniform point in a d-ball is distributed as U^{1/d}
    length = radius * randomness.rand(num, 1, generator=generator, device=device, dtype=dtype) ** (1 / dim)
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
    return deltas[randomness.multinomial(weights, 1, generator=generator)[0]]


def minimize_by_sampling(loss_fn: Objective, theta: Tensor, steps: int, alpha: float, radius: float,
                         num_candidates: int = 64, generator: torch.Generator | None = None,
                         relative: bool = False) -> tuple[Tensor, Tensor]:
    """Iterate $\\theta \\leftarrow \\theta + \\Delta\\theta$, $\\Delta\\theta\\sim p(\\Delta\\theta|\\theta)$.

    ``relative``: the ball's radius is ``radius`` $\\cdot\\|\\theta\\|$, a scale-aware proposal. An error rate
    cannot see the scale of $\\theta$ ($\\theta$ and $c\\theta$, $c > 0$, classify alike); with a fixed radius
    the same step is a large turn at small $\\|\\theta\\|$ and a negligible one at large $\\|\\theta\\|$, with a
    relative one every step is the same angle and the walk from $c\\theta$ is $c$ times the walk from $\\theta$.
    Returns the path ``(steps + 1, dim)`` and the objective along it ``(steps + 1,)``; needs no gradient.
    """
    path = [theta]
    for _ in range(steps):
        # the scale-aware ball $\|\Delta\theta\| \le \epsilon\|\theta\|$, or the fixed $\|\Delta\theta\| \le \epsilon$
        ball = radius * float(theta.norm()) if relative else radius
        theta = theta + sample_step(loss_fn, theta, alpha, ball, num_candidates, generator)
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



def guided_proposals(num: int, theta: Tensor, surrogate_grad: Tensor, scale: float, step: float,
                     guided_fraction: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """``num`` candidates ``(num, dim)`` from $\\pi\\,\\mathcal N(0, \\sigma^2 I) + (1-\\pi)\\,\\mathcal N(-\\eta g, \\sigma^2 I)$.

    ``scale`` is $\\sigma$, ``step`` is $\\eta$, ``surrogate_grad`` is $g = \\nabla L_{\\text{MLE}}$ ``(dim,)``,
    ``guided_fraction`` is $1-\\pi$ (0: unguided Gaussian search). Drawn on the generator's device,
    returned on ``theta``'s.
    """
    noise = scale * randomness.randn(num, theta.shape[-1], generator=generator, device=theta.device,
                                     dtype=theta.dtype)  # (num, dim)
    guided = randomness.rand(num, 1, generator=generator, device=theta.device) < guided_fraction  # (num, 1)
    # $\Delta\theta \sim \pi\,\mathcal N(0, \sigma^2 I) + (1-\pi)\,\mathcal N(-\eta\nabla L_{\text{MLE}}, \sigma^2 I)$
    return noise - guided.to(theta.dtype) * step * surrogate_grad


def guided_search(task_loss: Objective, surrogate_loss: Objective, theta: Tensor, steps: int, alpha: float,
                  scale: float, step: float, guided_fraction: float = 0.5, num_candidates: int = 32,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """MLE-guided parameter search: ``steps`` updates $\\theta \\leftarrow \\theta + \\Delta\\theta$, each
    resampled from :func:`guided_proposals` with weights $\\propto e^{-\\Delta l/\\alpha}$ of the task loss.

    Only the surrogate is differentiated, only the task loss selects. Returns the final parameters
    ``(dim,)`` and the task loss along the way ``(steps + 1,)``.
    """
    losses = [task_loss(theta[None])[0]]
    for _ in range(steps):
        grad = torch.zeros_like(theta)
        if guided_fraction > 0:
            leaf = theta.detach().requires_grad_(True)
            grad = torch.autograd.grad(surrogate_loss(leaf[None]).sum(), leaf)[0]
        deltas = guided_proposals(num_candidates, theta, grad, scale, step, guided_fraction, generator)
        with torch.no_grad():
            weights = step_weights(task_loss, theta, deltas, alpha)  # (num,)
            theta = theta + deltas[randomness.multinomial(weights, 1, generator=generator)[0]]
            losses.append(task_loss(theta[None])[0])
    return theta, torch.stack(losses)


def xor_dataset(n: int, dim: int, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points ``(n, dim)`` with standard normal coordinates, labelled $[x_1 x_2 > 0]$ ``(n,)``:
    only two coordinates matter, the other ``dim - 2`` are nuisance directions a search must ignore."""
    features = randomness.randn(n, dim, generator=generator, device=device)
    return features, (features[:, 0] * features[:, 1] > 0).long()


def mlp_classifier_losses(features: Tensor, labels: Tensor, hidden: int) -> tuple[Objective, Objective, int]:
    """Task loss (error rate) and MLE loss (logistic) of a one-hidden-layer tanh network, for a batch of
    flat parameter vectors ``(num, dim)``; returns ``(error_rate, logistic, dim)``.

    Layout of a parameter vector: $W_1$ ``(in, hidden)``, $b_1$ ``(hidden,)``, $w_2$ ``(hidden,)``, $b_2$.
    """
    d_in = features.shape[-1]
    dim = d_in * hidden + 2 * hidden + 1
    signs = 2 * labels.to(features.dtype) - 1  # (n,)

    def scores(theta: Tensor) -> Tensor:  # (num, dim) -> (num, n)
        w1 = theta[:, :d_in * hidden].reshape(-1, d_in, hidden)  # (num, in, hidden)
        b1 = theta[:, d_in * hidden:d_in * hidden + hidden]  # (num, hidden)
        w2 = theta[:, d_in * hidden + hidden:-1]  # (num, hidden)
        h = torch.tanh(torch.einsum("ni,bih->bnh", features, w1) + b1[:, None, :])  # (num, n, hidden)
        return torch.einsum("bnh,bh->bn", h, w2) + theta[:, -1:]

    def error_rate(theta: Tensor) -> Tensor:
        return ((scores(theta) > 0).long() != labels).to(theta.dtype).mean(-1)

    def logistic(theta: Tensor) -> Tensor:
        return torch.nn.functional.softplus(-signs * scores(theta)).mean(-1)

    return error_rate, logistic, dim
