r"""让人惊叹的Johnson-Lindenstrauss引理：应用篇 — https://kexue.fm/archives/8706

Johnson & Lindenstrauss, "Extensions of Lipschitz mappings into a Hilbert space" (1984); the bound below
is from Dasgupta & Gupta, "An elementary proof of a theorem of Johnson and Lindenstrauss" (2003); SimHash
from Charikar, "Similarity estimation techniques from rounding algorithms" (STOC 2002).

Random projection, in the article's words: to reduce $v_1,\dots,v_N\in\mathbb{R}^m$ to $n$ dimensions,
sample an $n\times m$ matrix $A$ with entries from $\mathcal{N}(0, 1/n)$ and use $Av_1,\dots,Av_N$.
For any fixed $v$, $\Vert Av\Vert^2/\Vert v\Vert^2 \sim \chi^2_n/n$ (mean 1, variance $2/n$), and with
$n \ge 4\ln N/(\varepsilon^2/2 - \varepsilon^3/3)$ all pairwise distances are kept within a factor
$1\pm\varepsilon$ with positive probability. That is all the article's bound promises: each pair fails
with probability at most $2e^{-n(\varepsilon^2/2-\varepsilon^3/3)/2}$, and the union bound over the
$N(N-1)/2$ pairs only gives success probability $\ge 1/N$ at that $n$. To fail with probability at most
$\delta$, take

$$ n \ge \frac{2\ln\big(N(N-1)/\delta\big)}{\varepsilon^2/2 - \varepsilon^3/3}. $$

Locality-sensitive hashing (SimHash) keeps only the signs: for one Gaussian direction $w$,
$P[\mathrm{sign}(w^\top u) \ne \mathrm{sign}(w^\top v)] = \theta(u, v)/\pi$, so the fraction of differing
bits among $n$ random hyperplanes estimates the angle $\theta$, hence $\cos\theta$.

Randomized SVD (Halko, Martinsson & Tropp, SIAM Review 2011) uses the same idea on the columns: a random
projection $Y = M\Omega$ already spans (nearly) the top singular subspace of $M$.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from spaces_code import randomness


def random_projection(x: Tensor, dim: int, generator: torch.Generator | None = None) -> Tensor:
    r"""$v \mapsto Av$ for every row of ``x`` (N, m) -> (N, dim), with $A_{ij}\sim\mathcal{N}(0, 1/\mathrm{dim})$.

    Every row uses the same $A$ (pairwise geometry is what is preserved). The matrix is drawn on the
    generator's device in ``x.dtype`` (floating point only) and moved to ``x.device``: a CPU generator
    gives the same $A$ whatever device ``x`` is on.
    """
    if x.dim() != 2:
        raise ValueError(f"random_projection expects x of shape (N, m), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"random_projection needs a floating-point x, got {x.dtype}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    # $A_{ij} \sim \mathcal{N}(0, 1/n)$
    a = randomness.randn(dim, x.shape[1], generator=generator, device=x.device, dtype=x.dtype) / math.sqrt(dim)
    # $v \mapsto Av$ for each row
    return x @ a.T  # (N, dim)


def pairwise_distances(x: Tensor) -> Tensor:
    """Euclidean distances of all pairs $i < j$ of rows of ``x`` (N, m), as a vector (N(N-1)/2,).

    Pairs come in ``torch.triu_indices(N, N, 1)`` order: (0,1), (0,2), ..., (1,2), ...
    """
    return torch.pdist(x)


def distance_distortion(x: Tensor, projected: Tensor) -> Tensor:
    r"""Ratios $\Vert Av_i - Av_j\Vert / \Vert v_i - v_j\Vert$ over all pairs (N(N-1)/2,): 1 means kept exactly."""
    return pairwise_distances(projected) / pairwise_distances(x)


def jl_dimension(n_points: int, eps: float, failure_probability: float | None = None) -> int:
    r"""$n = \lceil 4\ln N / (\varepsilon^2/2 - \varepsilon^3/3)\rceil$ (Dasgupta–Gupta), $0 < \varepsilon < 1$.

    With ``failure_probability`` $\delta$: $n = \lceil 2\ln(N(N-1)/\delta) / (\varepsilon^2/2 - \varepsilon^3/3)\rceil$,
    so that some pair leaves $[1-\varepsilon, 1+\varepsilon]$ with probability at most $\delta$ (union bound).
    """
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps}")
    rate = eps ** 2 / 2 - eps ** 3 / 3
    if failure_probability is None:
        # $n \ge \frac{4\ln N}{\varepsilon^2/2 - \varepsilon^3/3}$
        return math.ceil(4 * math.log(n_points) / rate)
    if not 0 < failure_probability < 1:
        raise ValueError(f"failure_probability must lie in (0, 1), got {failure_probability}")
    # $n \ge \frac{2\ln(N(N-1)/\delta)}{\varepsilon^2/2 - \varepsilon^3/3}$
    return math.ceil(2 * math.log(n_points * (n_points - 1) / failure_probability) / rate)


def simhash(x: Tensor, n_bits: int, generator: torch.Generator | None = None) -> Tensor:
    """Sign bits (N, n_bits) of ``n_bits`` shared random Gaussian hyperplanes: the SimHash of each row."""
    # the projection's scale does not change the signs: SimHash is a random projection's sign pattern
    return random_projection(x, n_bits, generator) > 0


def angle_from_bits(bits_u: Tensor, bits_v: Tensor) -> Tensor:
    r"""$\hat\theta = \pi\cdot\#\{\text{differing bits}\}/n$ for SimHash codes (..., n) of two vectors."""
    # $P[\text{bit differs}] = \theta/\pi$
    return math.pi * (bits_u != bits_v).to(torch.float64).mean(-1)


def cosine_from_bits(bits_u: Tensor, bits_v: Tensor) -> Tensor:
    r"""$\cos\hat\theta$: the cosine similarity estimated from SimHash codes alone."""
    return torch.cos(angle_from_bits(bits_u, bits_v))


def angle_between(u: Tensor, v: Tensor) -> Tensor:
    r"""Exact $\theta = \arccos\frac{u^\top v}{\Vert u\Vert\Vert v\Vert}$ along the last axis, in float64."""
    cos = torch.nn.functional.cosine_similarity(u.double(), v.double(), dim=-1)
    return torch.arccos(cos.clamp(-1.0, 1.0))


def randomized_svd(m: Tensor, rank: int, oversample: int = 10, power_iterations: int = 1,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Top-``rank`` SVD $M \approx U\,\mathrm{diag}(S)\,V^\top$ of ``m`` (rows, cols) from a random sketch.

    $Y = (MM^\top)^{k} M\Omega$ ($k$ = ``power_iterations``) with Gaussian $\Omega$ (cols, rank + oversample),
    $Q = \mathrm{qr}(Y)$, then the exact SVD of the small $Q^\top M$. Returns U (rows, rank), S (rank,), V (cols, rank).
    """
    sketch_size = min(rank + oversample, *m.shape)
    omega = randomness.randn(m.shape[1], sketch_size, generator=generator, device=m.device, dtype=m.dtype)
    # $Y = M\Omega$: random combinations of the columns, a sketch of the range of $M$
    q, _ = torch.linalg.qr(m @ omega)  # (rows, sketch)
    for _ in range(power_iterations):  # sharpen the spectrum: $(MM^\top)M\Omega$
        q, _ = torch.linalg.qr(m @ (m.T @ q))
    u_small, s, vh = torch.linalg.svd(q.T @ m, full_matrices=False)  # (sketch, sketch), (sketch,), (sketch, cols)
    return (q @ u_small)[:, :rank], s[:rank], vh[:rank].T
