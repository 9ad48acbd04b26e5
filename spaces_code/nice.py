r"""细水长flow之NICE：流模型的基本概念与实现 — https://kexue.fm/archives/5776

Companion to Dinh, Krueger & Bengio, "NICE: Non-linear Independent Components Estimation" (2014).
An additive coupling layer splits $\boldsymbol{x}$ into $\boldsymbol{x}_1, \boldsymbol{x}_2$ and maps

$$\boldsymbol{h}_1 = \boldsymbol{x}_1,\qquad \boldsymbol{h}_2 = \boldsymbol{x}_2 + \boldsymbol{m}(\boldsymbol{x}_1),
\qquad\text{inverse: } \boldsymbol{x}_1 = \boldsymbol{h}_1,\quad \boldsymbol{x}_2 = \boldsymbol{h}_2 - \boldsymbol{m}(\boldsymbol{h}_1).$$

Its Jacobian is triangular with a unit diagonal, so every coupling has determinant 1; the flow
alternates which half is shifted, and a final scaling layer $\boldsymbol{z} = \boldsymbol{s}\otimes\boldsymbol{h}$
supplies the only volume change. With a standard normal prior the log-likelihood is

$$\log q(\boldsymbol{x}) = -\frac{D}{2}\log (2\pi) - \frac{1}{2}\Vert \boldsymbol{s}\otimes \boldsymbol{f}(\boldsymbol{x})\Vert^2
+ \sum_i \log \boldsymbol{s}_i .$$

Randomness comes in explicitly: the constructors draw their weights from ``generator`` (PyTorch's
default initialisation, :func:`spaces_code.randomness.init_parameters_`), :meth:`NICE.sample` its noise.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spaces_code.randomness import init_parameters_, randn


def _mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, hidden), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


class AdditiveCoupling(nn.Module):
    r"""$h_1 = x_1,\ h_2 = x_2 + m(x_1)$ on the split ``x[..., :k] | x[..., k:]``, ``k = dim // 2``.

    ``shift_first=True`` swaps the roles: the first part is shifted by $m$ of the second.
    """

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, shift_first: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a coupling layer needs dim >= 2, got {dim}")
        self.split = dim // 2
        self.shift_first = shift_first
        sizes = (self.split, dim - self.split)
        d_cond, d_shift = (sizes[1], sizes[0]) if shift_first else sizes
        self.m = init_parameters_(_mlp(d_cond, d_shift, hidden, depth), generator)

    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x[..., :self.split], x[..., self.split:]
        return (b, a) if self.shift_first else (a, b)  # (conditioner, shifted)

    def _join(self, cond: Tensor, shifted: Tensor) -> Tensor:
        return torch.cat((shifted, cond) if self.shift_first else (cond, shifted), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        cond, shifted = self._parts(x)
        # $h_2 = x_2 + m(x_1)$
        return self._join(cond, shifted + self.m(cond))

    def inverse(self, h: Tensor) -> Tensor:
        cond, shifted = self._parts(h)
        # $x_2 = h_2 - m(h_1)$
        return self._join(cond, shifted - self.m(cond))


class NICE(nn.Module):
    r"""Additive couplings that alternate halves, then the scaling layer $z = s\otimes h$ with $s = e^{\log s}$."""

    def __init__(self, dim: int, n_couplings: int = 4, hidden: int = 64, depth: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.dim = dim
        self.couplings = nn.ModuleList(
            AdditiveCoupling(dim, hidden, depth, shift_first=bool(i % 2), generator=generator)
            for i in range(n_couplings))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""$z = f(x)$ (..., dim) and $\log|\det \partial z/\partial x|$ (...,)."""
        h = x
        for coupling in self.couplings:
            h = coupling(h)
        # $z = s \otimes h$
        z = h * torch.exp(self.log_scale)
        # $\log|\det| = \sum_i \log s_i$: the couplings contribute 0
        log_det = self.log_scale.sum().expand(x.shape[:-1])
        return z, log_det

    def inverse(self, z: Tensor) -> Tensor:
        h = z * torch.exp(-self.log_scale)
        for coupling in reversed(self.couplings):
            h = coupling.inverse(h)
        return h

    def log_prob(self, x: Tensor) -> Tensor:
        r"""$\log q(x)$ (...,) under the standard normal prior."""
        z, log_det = self(x)
        # $\log q(x) = -\frac{D}{2}\log 2\pi - \frac{1}{2}\Vert s\otimes f(x)\Vert^2 + \sum_i \log s_i$
        return -0.5 * self.dim * math.log(2 * math.pi) - 0.5 * z.square().sum(-1) + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""(n, dim) samples $x = f^{-1}(z)$, $z\sim\mathcal{N}(0, I)$ drawn on the generator's device."""
        ref = self.log_scale
        z = randn(n, self.dim, generator=generator, device=ref.device, dtype=ref.dtype)
        return self.inverse(z)
