r"""Performer：用随机投影将Attention的复杂度线性化 — https://kexue.fm/archives/7921

FAVOR+ (Fast Attention Via positive Orthogonal Random features) from "Rethinking Attention with
Performers" (Choromanski et al., 2020, arXiv:2009.14794). The exponential kernel of softmax attention is
an expectation over Gaussian projections,

$$
e^{q\cdot k} = \mathbb{E}_{\omega\sim\mathcal{N}(0, I_d)}
    \left[e^{\omega\cdot q - \|q\|^2/2} \times e^{\omega\cdot k - \|k\|^2/2}\right]
\approx \tilde{q}\cdot\tilde{k},\qquad
\tilde{x} = \frac{1}{\sqrt{m}}\left(e^{\omega_1\cdot x - \|x\|^2/2}, \dots,
             e^{\omega_m\cdot x - \|x\|^2/2}\right),
$$

so $\exp(QK^\top/\sqrt{d})$ is replaced by the rank-$m$ product $\tilde{Q}\tilde{K}^\top$ (after
$q, k \to q/d^{1/4}, k/d^{1/4}$), and attention becomes linear attention with positive features (see
:mod:`spaces_code.linear_attention`, whose non-causal and causal prefix-sum forms are used here). The
features are positive, so the normaliser stays positive. Drawing $\omega_1..\omega_m$ orthogonal (in
blocks of $d$, each row rescaled to a $\chi_d$-distributed norm) keeps every feature unbiased and
lowers the variance.

The trigonometric features they replace, $\tilde{x} = e^{\|x\|^2/2}(\cos\omega_i\cdot x,
\sin\omega_i\cdot x)_i/\sqrt{m}$, are unbiased too, but (the paper's Lemma 2, with $m$ projections)

$$
\frac{\mathrm{MSE}_{\mathrm{trig}}}{e^{2q\cdot k}} = \frac{\big(e^{\|q-k\|^2} - 1\big)^2}{2m\,e^{\|q-k\|^2}},
\qquad
\frac{\mathrm{MSE}_{+}}{e^{2q\cdot k}} = \frac{e^{\|q+k\|^2} - 1}{m}:
$$

where $q\cdot k$ is very negative (the small attention weights that make up most of a softmax row)
$\|q-k\|$ is large and the trigonometric estimate's relative error explodes, while the positive one's
shrinks ($\|q+k\|$ is small). :func:`relative_kernel_mse` evaluates both.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from spaces_code import randomness
from spaces_code.linear_attention import feature_map_attention


def gaussian_projection(num_features: int, dim: int, orthogonal: bool = False,
                        generator: torch.Generator | None = None,
                        device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float32, draws: int | None = None) -> Tensor:
    r"""Projection $(\omega_1, \dots, \omega_m)$ of shape ``(m, d)``, or ``(draws, m, d)``: that many
    independent projections at once. Drawn on the generator's device and moved to ``device`` (default:
    the generator's device), so a CPU generator gives the same projection on every device.

    ``orthogonal=False``: i.i.d. $\mathcal{N}(0, I_d)$ rows. ``orthogonal=True``: rows within each
    block of ``d`` are exactly orthogonal (QR of a Gaussian matrix, signs fixed so the frame is Haar
    distributed), each rescaled by the norm of an independent Gaussian vector, so every row is still
    marginally $\mathcal{N}(0, I_d)$.
    """
    if num_features < 1 or dim < 1:
        raise ValueError(f"need num_features >= 1 and dim >= 1, got {num_features}, {dim}")
    batch = (1 if draws is None else draws,)
    if not orthogonal:
        w = randomness.randn(*batch, num_features, dim, generator=generator, device=device, dtype=dtype)
        return w[0] if draws is None else w
    num_blocks = math.ceil(num_features / dim)
    gaussian = randomness.randn(*batch, num_blocks, dim, dim, generator=generator, device=device,
                                dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)  # batched over draws and blocks
    # fixing the signs by diag(R) makes each Q Haar distributed; its rows are orthonormal
    frames = (q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)).transpose(-2, -1)
    directions = frames.reshape(batch + (num_blocks * dim, dim))[..., :num_features, :]  # (draws, m, d)
    # $\|\omega_i\| \sim \chi_d$: the norm of a fresh Gaussian vector
    norms = randomness.randn(*batch, num_features, dim, generator=generator, device=device,
                             dtype=torch.float64).norm(dim=-1, keepdim=True)  # (draws, m, 1)
    w = (directions * norms).to(dtype)
    return w[0] if draws is None else w


def log_positive_random_features(x: Tensor, projection: Tensor) -> Tensor:
    r"""$\log\tilde{x}_i = \omega_i\cdot x - \|x\|^2/2 - \tfrac12\log m$, shape (..., n, m).

    ``projection`` is ``(m, d)`` or a stack ``(..., m, d)`` of independent projections that broadcasts
    against the batch dimensions of ``x`` (..., n, d)."""
    m = projection.shape[-2]
    # $\omega_i \cdot x - \|x\|^2 / 2 - \log\sqrt{m}$
    return x @ projection.transpose(-2, -1) - 0.5 * (x * x).sum(dim=-1, keepdim=True) - 0.5 * math.log(m)


def positive_random_features(x: Tensor, projection: Tensor) -> Tensor:
    r"""FAVOR+ features $\tilde{x}$ of ``x`` (..., n, d) -> (..., n, m); for any ``q, k``,
    $\mathbb{E}[\tilde{q}\cdot\tilde{k}] = e^{q\cdot k}$."""
    return log_positive_random_features(x, projection).exp()


def performer_attention(q: Tensor, k: Tensor, v: Tensor, projection: Tensor,
                        causal: bool = False) -> Tensor:
    r"""FAVOR+ approximation of ``softmax(q k^T / sqrt(d)) v`` in $\mathscr{O}(n m d)$.

    ``q, k`` (..., n, d), ``v`` (..., n, d_v), ``projection`` (m, d) from :func:`gaussian_projection`
    (or a stack (..., m, d) of them, giving one output per projection).
    Before exponentiating, each query row loses its own maximum and all keys lose their common maximum:
    both factors cancel between numerator and denominator, and nothing overflows.
    """
    scale = q.shape[-1] ** -0.25
    # $q/d^{1/4} \cdot k/d^{1/4} = q\cdot k/\sqrt{d}$
    log_q = log_positive_random_features(q * scale, projection)  # (..., n, m)
    log_k = log_positive_random_features(k * scale, projection)  # (..., n, m)
    q_features = (log_q - log_q.amax(dim=-1, keepdim=True)).exp()
    k_features = (log_k - log_k.amax(dim=(-2, -1), keepdim=True)).exp()
    return feature_map_attention(q_features, k_features, v, causal=causal)


def trigonometric_random_features(x: Tensor, projection: Tensor) -> Tensor:
    r"""The features FAVOR+ replaces: $\tilde{x} = e^{\|x\|^2/2}\,(\cos\omega_i\cdot x,
    \sin\omega_i\cdot x)_{i=1..m}/\sqrt{m}$, shape (..., n, 2m); $\mathbb{E}[\tilde{q}\cdot\tilde{k}] =
    e^{q\cdot k}$ as well, but single products can be negative."""
    m = projection.shape[-2]
    angles = x @ projection.transpose(-2, -1)  # (..., n, m)
    # $e^{\|x\|^2/2}(\cos\omega\cdot x, \sin\omega\cdot x)/\sqrt{m}$
    scale = torch.exp(0.5 * (x * x).sum(dim=-1, keepdim=True)) / math.sqrt(m)
    return torch.cat((angles.cos(), angles.sin()), dim=-1) * scale


def relative_kernel_mse(q: Tensor, k: Tensor, num_features: int, kind: str) -> Tensor:
    r"""$\mathrm{MSE}/e^{2q\cdot k}$ of the estimate of $e^{q\cdot k}$ from ``num_features`` i.i.d.
    projections (Choromanski et al., Lemma 2), for ``kind`` ``"positive"`` or ``"trigonometric"``;
    ``q, k`` (..., d) broadcast, float64 advised."""
    if kind == "positive":
        # $(e^{\|q+k\|^2} - 1)/m$
        return torch.expm1(((q + k) ** 2).sum(-1)) / num_features
    if kind == "trigonometric":
        gap = ((q - k) ** 2).sum(-1)
        # $(e^{\|q-k\|^2} - 1)^2 / (2m\,e^{\|q-k\|^2})$
        return torch.expm1(gap) ** 2 * torch.exp(-gap) / (2 * num_features)
    raise ValueError(f"kind must be 'positive' or 'trigonometric', got {kind!r}")
