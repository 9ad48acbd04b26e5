r"""Transformer升级之路：1、Sinusoidal位置编码追根溯源 — https://kexue.fm/archives/8231

The Sinusoidal position encoding of "Attention is All You Need" (Vaswani et al., 2017,
arXiv:1706.03762), in the article's notation

$$
p_{k,2i} = \sin\big(k/10000^{2i/d}\big),\qquad p_{k,2i+1} = \cos\big(k/10000^{2i/d}\big).
$$

Writing $\theta_i = 10000^{-2i/d}$, the inner product of two encodings is

$$
\langle p_m, p_n\rangle = \sum_{i=0}^{d/2-1}\cos\big((m-n)\theta_i\big)
    = \mathrm{Re}\Big[\sum_{i} e^{\mathrm{i}(m-n)\theta_i}\Big],
$$

a function of $m-n$ alone (relative position), and $p_{m+k}$ is a fixed rotation of $p_m$ — the same
block rotation $\mathcal{R}$ that RoPE (:mod:`spaces_code.rope`) applies, with angle $-k\theta_i$. For
large $d$ the sum is approximately $\tfrac{d}{2}\int_0^1 e^{\mathrm{i}(m-n)\cdot 10000^{-t}}dt$, whose
real part decays with $|m-n|$: the "long-range decay" the article derives from
$\theta_i = 10000^{-2i/d}$.
"""
from __future__ import annotations

import torch
from torch import Tensor


def sinusoidal_frequencies(d: int, base: float = 10000.0,
                           device: torch.device | str | None = None) -> Tensor:
    r"""$\theta_i = \mathrm{base}^{-2i/d}$, ``i = 0 .. d/2-1``, float64, shape ``(d/2,)``."""
    if d % 2:
        raise ValueError(f"the Sinusoidal encoding needs an even dimension, got d={d}")
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)


def sinusoidal_position_encoding(positions: Tensor, d: int, base: float = 10000.0) -> Tensor:
    """Encodings ``(n, d)`` (float64) of ``positions`` (n,): sin in even, cos in odd components."""
    theta = sinusoidal_frequencies(d, base, device=positions.device)  # (d/2,)
    # $k \theta_i = k / 10000^{2i/d}$
    angles = positions.to(torch.float64)[:, None] * theta  # (n, d/2)
    # $p_{k,2i} = \sin(k\theta_i),\ p_{k,2i+1} = \cos(k\theta_i)$
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # (n, d)


def relative_inner_product(offsets: Tensor, d: int, base: float = 10000.0) -> Tensor:
    r"""Closed form $\langle p_m, p_n\rangle = \sum_i\cos((m-n)\theta_i)$ for ``offsets = m - n``
    (any shape)."""
    theta = sinusoidal_frequencies(d, base, device=offsets.device)  # (d/2,)
    # $\sum_i \cos((m-n)\theta_i)$
    return torch.cos(offsets.to(torch.float64)[..., None] * theta).sum(dim=-1)


def decay_integral(offsets: Tensor, base: float = 10000.0, steps: int = 20001) -> Tensor:
    r"""$\mathrm{Re}\int_0^1 e^{\mathrm{i}\,r\,\mathrm{base}^{-t}}dt$ for each offset $r$ (trapezoidal
    rule); ``d/2`` times it approximates :func:`relative_inner_product`."""
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64, device=offsets.device)  # (steps,)
    # $\int_0^1 \cos(r \cdot base^{-t})\,dt$
    integrand = torch.cos(offsets.to(torch.float64)[..., None] * base ** (-t))  # (..., steps)
    return torch.trapezoid(integrand, t, dim=-1)
