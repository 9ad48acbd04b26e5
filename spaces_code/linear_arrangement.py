r"""最小熵原理（四）：“物以类聚”之从图书馆到词向量 — https://kexue.fm/archives/6191

The library's "套路": books that are borrowed together should stand close together, so that the
reader walks little. With $C_{ij}$ how often items $i$ and $j$ are used together and $x_i$ the shelf
position of item $i$ (a permutation of $0, \dots, n-1$), the walking cost of an arrangement is

$$ \mathcal{L}(x) = \sum_{i<j} C_{ij}\, |x_i - x_j| , $$

the minimum linear arrangement problem (NP-hard in general). Relaxing the positions to real numbers
and the distance to its square gives $\sum_{i<j} C_{ij}(x_i-x_j)^2 = x^\top L x$ with the graph
Laplacian $L = D - C$; under $x^\top D x = 1$, $x^\top D\mathbf{1} = 0$ the minimiser is the first
non-trivial solution of $L v = \lambda D v$ (spectral seriation, Atkins, Boman & Hendrickson 1998).
Keeping the first $k$ such vectors instead of one gives every item a $k$-dimensional vector — the step
the article takes from the bookshelf to word vectors (Laplacian eigenmaps, Belkin & Niyogi 2003).

Here: co-occurrence counts from tokenised sentences, the cost, the spectral order, and a swap
local search that only ever lowers the cost.
"""
from __future__ import annotations

from typing import Sequence

import torch


def cooccurrence_matrix(sentences: Sequence[Sequence[str]], vocab: Sequence[str], window: int = 5,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """Symmetric counts $C_{ij}$ of vocab words within ``window`` tokens of each other; zero diagonal.

    Tokens outside ``vocab`` still count for the distance. Returns ``(len(vocab), len(vocab))`` float64.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    index = {word: i for i, word in enumerate(vocab)}
    pairs: list[tuple[int, int]] = []
    for sentence in sentences:
        ids = [(t, index[word]) for t, word in enumerate(sentence) if word in index]
        for a, (t_a, i) in enumerate(ids):
            for t_b, j in ids[a + 1:]:
                if t_b - t_a > window:
                    break
                if i != j:
                    pairs.append((i, j))
    counts = torch.zeros(len(vocab), len(vocab), dtype=torch.float64, device=device)
    if pairs:
        rows, cols = torch.tensor(pairs, device=device).T
        counts.index_put_((rows, cols), torch.ones(len(pairs), dtype=torch.float64, device=device),
                          accumulate=True)
    return counts + counts.T


def positions_from_order(order: torch.Tensor) -> torch.Tensor:
    """``order[k]`` is the item at shelf slot k; returns ``x`` with ``x[item]`` = its slot, ``(..., n)``."""
    return torch.argsort(order, dim=-1)


def arrangement_cost(cooc: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    r"""$\sum_{i<j} C_{ij}|x_i - x_j|$ for positions ``(..., n)``; returns ``(...)``."""
    x = positions.to(cooc.dtype)
    distance = (x[..., :, None] - x[..., None, :]).abs()  # (..., n, n)
    # $\mathcal{L}(x) = \frac12 \sum_{i,j} C_{ij} |x_i - x_j|$ (C symmetric)
    return 0.5 * (cooc * distance).sum(dim=(-2, -1))


def random_arrangement_costs(cooc: torch.Tensor, samples: int,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """Costs of ``samples`` uniformly random shelf orders: the baseline to beat, ``(samples,)``."""
    n = cooc.shape[-1]
    keys = torch.rand(samples, n, generator=generator, device=cooc.device)
    return arrangement_cost(cooc, positions_from_order(torch.argsort(keys, dim=-1)))


def spectral_embedding(cooc: torch.Tensor, dim: int = 1) -> torch.Tensor:
    r"""The first ``dim`` non-trivial solutions of $Lv = \lambda Dv$ as item vectors ``(n, dim)``.

    Every item needs at least one co-occurrence (positive degree). Signs are fixed so that the
    largest-magnitude entry of each vector is positive.
    """
    degree = cooc.sum(dim=1)  # (n,)
    if (degree <= 0).any():
        raise ValueError("every item needs a co-occurrence: drop items with zero degree first")
    if not 1 <= dim < cooc.shape[0]:
        raise ValueError(f"dim must be in [1, n-1], got {dim}")
    inv_sqrt = degree.rsqrt()
    # $L = D - C$, solved as the symmetric $D^{-1/2} L D^{-1/2} u = \lambda u$, $v = D^{-1/2} u$
    laplacian = torch.diag(degree) - cooc
    _, vectors = torch.linalg.eigh(inv_sqrt[:, None] * laplacian * inv_sqrt[None, :])  # ascending
    embedding = inv_sqrt[:, None] * vectors[:, 1:dim + 1]  # (n, dim): skip the constant solution
    signs = torch.sign(embedding.gather(0, embedding.abs().argmax(dim=0, keepdim=True)))
    return embedding * signs


def spectral_order(cooc: torch.Tensor) -> torch.Tensor:
    """Shelf order from the relaxed problem: items sorted by the first spectral coordinate."""
    return torch.argsort(spectral_embedding(cooc, 1)[:, 0])


def swap_gains(cooc: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    r"""Change of the cost when items a and b swap places, for all pairs at once, ``(n, n)``.

    With $D_{ij} = |x_i - x_j|$ and $M = CD$:
    $\Delta_{ab} = M_{ab} + M_{ba} - M_{aa} - M_{bb} + 2C_{ab}D_{ab}$.
    """
    x = positions.to(cooc.dtype)
    distance = (x[:, None] - x[None, :]).abs()  # (n, n)
    m = cooc @ distance  # (n, n)
    diagonal = torch.diagonal(m)
    # $\Delta_{ab} = M_{ab} + M_{ba} - M_{aa} - M_{bb} + 2C_{ab}D_{ab}$
    return m + m.T - diagonal[:, None] - diagonal[None, :] + 2.0 * cooc * distance


def improve_by_swaps(cooc: torch.Tensor, order: torch.Tensor, max_swaps: int = 1000) -> torch.Tensor:
    """Steepest descent over pair swaps: apply the best cost-lowering swap until none is left."""
    positions = positions_from_order(order).clone()
    for _ in range(max_swaps):
        gains = swap_gains(cooc, positions)
        best = int(torch.argmin(gains))
        a, b = divmod(best, gains.shape[1])
        if float(gains[a, b]) >= -1e-9:
            break
        positions[[a, b]] = positions[[b, a]]
    return torch.argsort(positions)
