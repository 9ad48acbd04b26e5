r"""细水长flow之可逆ResNet：极致的暴力美学 — https://kexue.fm/archives/6482

Companion to Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen, "Invertible Residual Networks" (ICML 2019).
A residual block $\boldsymbol{y} = \boldsymbol{x} + g(\boldsymbol{x})$ is invertible when
$\text{Lip}(g) < 1$. Spectral normalisation gives every weight matrix a spectral norm at most $c < 1$
(the activations are 1-Lipschitz), and the inverse is the fixed point of

$$\boldsymbol{x}_{n+1} = \boldsymbol{y} - g(\boldsymbol{x}_n),\qquad
\Vert \boldsymbol{x}_{n} - \boldsymbol{x}\Vert \le \text{Lip}(g)^n\, \Vert \boldsymbol{x}_0 - \boldsymbol{x}\Vert .$$

The log-determinant is a power series whose traces are estimated by Hutchinson's trick:

$$\ln\left|\det\left(I + \frac{\partial g}{\partial \boldsymbol{x}}\right)\right|
= \sum_{n=1}^{\infty} \frac{(-1)^{n-1}}{n}\, \text{Tr}\left(J_g^n\right),\qquad
\text{Tr}(A) = \mathbb{E}_{\boldsymbol{u}\sim\mathcal{N}(0, I)}\left[\boldsymbol{u}^{\top} A\, \boldsymbol{u}\right].$$

The paper estimates each spectral norm by power iteration; at these small widths the exact value
(``torch.linalg.matrix_norm(W, 2)``) is cheap, which makes $\text{Lip}(g) \le c^L$ a guarantee.
Randomness comes in explicitly: the block draws its weights from ``generator``, the Hutchinson probes
are drawn on the generator's device and moved to the input's.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from spaces_code.randomness import init_parameters_, randn


class SpectralLinear(nn.Linear):
    r"""Linear layer with $\tilde W = W \min(1, c/\Vert W\Vert_2)$, so $\Vert\tilde W\Vert_2 \le c$."""

    def __init__(self, d_in: int, d_out: int, coeff: float = 0.9):
        super().__init__(d_in, d_out)
        if not 0 < coeff < 1:
            raise ValueError(f"coeff must lie in (0, 1), got {coeff}")
        self.coeff = coeff

    def normalized_weight(self) -> Tensor:
        sigma = torch.linalg.matrix_norm(self.weight, ord=2)
        # $\tilde W = W \min(1, c/\Vert W\Vert_2)$
        return self.weight * torch.clamp(self.coeff / sigma, max=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.normalized_weight(), self.bias)


class InvertibleResidualBlock(nn.Module):
    """$y = x + g(x)$, with $g$ = spectral-normalised linear layers and ELU activations."""

    def __init__(self, dim: int, hidden: int = 32, n_layers: int = 3, coeff: float = 0.9,
                 generator: torch.Generator | None = None):
        super().__init__()
        sizes = [dim] + [hidden] * (n_layers - 1) + [dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i > 0:
                layers.append(nn.ELU())  # 1-Lipschitz
            layers.append(SpectralLinear(d_in, d_out, coeff))
        self.g = init_parameters_(nn.Sequential(*layers), generator)

    def lipschitz_bound(self) -> Tensor:
        r"""$\prod_l \Vert\tilde W_l\Vert_2 \ge \text{Lip}(g)$; at most $c^L < 1$."""
        norms = [torch.linalg.matrix_norm(m.normalized_weight(), ord=2)
                 for m in self.g if isinstance(m, SpectralLinear)]
        return torch.stack(norms).prod()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.g(x)

    def inverse_iterates(self, y: Tensor, n_iter: int = 50) -> Tensor:
        r"""(n_iter + 1, *y.shape): the fixed-point iterates $x_0 = y, x_1, \dots$."""
        x = y
        iterates = [x]
        for _ in range(n_iter):
            # $x_{n+1} = y - g(x_n)$
            x = y - self.g(x)
            iterates.append(x)
        return torch.stack(iterates)

    def inverse(self, y: Tensor, n_iter: int = 50) -> Tensor:
        return self.inverse_iterates(y, n_iter)[-1]

    def log_det(self, x: Tensor, n_terms: int = 10, n_probes: int = 1,
                generator: torch.Generator | None = None) -> Tensor:
        r"""Hutchinson + power-series estimate of $\ln|\det(I + J_g(x))|$, shape (batch,)."""
        return logdet_power_series(self.g, x, n_terms, n_probes, generator)


def logdet_power_series(g: Callable[[Tensor], Tensor], x: Tensor, n_terms: int, n_probes: int = 1,
                        generator: torch.Generator | None = None) -> Tensor:
    r"""$\sum_{n=1}^{N} \frac{(-1)^{n-1}}{n}\, u^\top J_g^n u$, averaged over ``n_probes`` Gaussian $u$.

    ``g`` acts row-wise on ``x`` (batch, d); the result is (batch,). Each term costs one
    vector-Jacobian product, never the full Jacobian.
    """
    if n_terms < 1 or n_probes < 1:
        raise ValueError(f"need n_terms >= 1 and n_probes >= 1, got {n_terms}, {n_probes}")
    batch = x.shape[0]
    # every probe gets its own copy of the batch: (n_probes * batch, d)
    x_rep = x.detach().repeat(n_probes, 1).requires_grad_(True)
    with torch.enable_grad():
        gx = g(x_rep)
        u = randn(*x_rep.shape, generator=generator, device=x.device, dtype=x.dtype)  # probes $u\sim\mathcal{N}(0, I)$
        w = u
        total = torch.zeros(x_rep.shape[0], device=x.device, dtype=x.dtype)
        for n in range(1, n_terms + 1):
            # w <- w^T J_g, so that <w, u> = u^T J_g^n u
            (w,) = torch.autograd.grad(gx, x_rep, grad_outputs=w, retain_graph=n < n_terms)
            total = total + (-1) ** (n - 1) / n * (w * u).sum(-1)
    return total.reshape(n_probes, batch).mean(0)


def series_log_det_from_jacobian(jac: Tensor, n_terms: int) -> Tensor:
    r"""$\sum_{n=1}^{N} \frac{(-1)^{n-1}}{n}\,\text{Tr}(J^n)$ with exact traces, for (..., d, d) Jacobians."""
    power = torch.eye(jac.shape[-1], dtype=jac.dtype, device=jac.device).expand_as(jac)
    total = torch.zeros(jac.shape[:-2], dtype=jac.dtype, device=jac.device)
    for n in range(1, n_terms + 1):
        power = power @ jac
        total = total + (-1) ** (n - 1) / n * power.diagonal(dim1=-2, dim2=-1).sum(-1)
    return total


def batch_jacobian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """(batch, d_out, d_in) Jacobians of a row-wise map ``f``, one vector-Jacobian product per output."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        rows = [torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(y.shape[1])]
    return torch.stack(rows, dim=1)


def exact_log_det(block: InvertibleResidualBlock, x: Tensor) -> Tensor:
    r"""$\ln|\det(I + J_g(x))|$ (batch,) from the full Jacobian: the reference for small ``d``."""
    return torch.linalg.slogdet(batch_jacobian(block, x))[1]
