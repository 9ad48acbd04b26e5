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

Here: co-occurrence counts from tokenised sentences or from a borrowing log, the cost, the spectral
order, a swap local search that only ever lowers the cost, and the exact optimum for small shelves.
The exact optimum uses that the cost counts, for every gap between neighbouring slots, the weight of
the pairs it separates: with $S_k$ the first $k$ items on the shelf,

$$ \mathcal{L}(x) = \sum_{k=1}^{n-1} \mathrm{cut}(S_k), \qquad
   \mathrm{cut}(S) = \sum_{i\in S,\, j\notin S} C_{ij}, $$

so the best shelf is a shortest path over subsets, $f(S) = \mathrm{cut}(S) + \min_{v\in S} f(S\setminus\{v\})$
(dynamic programming in $O(2^n n)$ instead of $n!$ orders).
"""
from __future__ import annotations

from typing import Sequence

import torch

from spaces_code.randomness import generator_device, rand, randint


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
    keys = rand(samples, n, generator=generator, device=cooc.device)  # drawn on the generator's device
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


def exact_arrangement(cooc: torch.Tensor) -> tuple[torch.Tensor, float]:
    r"""The optimal shelf order and its cost, by dynamic programming over subsets ($n \le 16$)."""
    n = cooc.shape[-1]
    if not 1 <= n <= 16:
        raise ValueError(f"exact arrangement is for 1 <= n <= 16 items, got {n}")
    c = cooc.double().cpu()
    masks = torch.arange(2 ** n)
    member = ((masks[:, None] >> torch.arange(n)) & 1).double()  # (2^n, n)
    # $\mathrm{cut}(S) = \sum_{i\in S, j\notin S} C_{ij}$
    cut = ((member @ c) * (1 - member)).sum(dim=1).tolist()
    best, last = [0.0] + [float("inf")] * (2 ** n - 1), [-1] * 2 ** n
    for mask in range(1, 2 ** n):
        for v in range(n):
            if mask >> v & 1:
                # $f(S) = \mathrm{cut}(S) + \min_{v \in S} f(S \setminus \{v\})$, v the last item of S
                candidate = best[mask ^ (1 << v)] + cut[mask]
                if candidate < best[mask]:
                    best[mask], last[mask] = candidate, v
    order, mask = [], 2 ** n - 1
    while mask:
        order.append(last[mask])
        mask ^= 1 << last[mask]
    # cut(all items) = 0, so best[full] is the sum of the n - 1 inner cuts
    return torch.tensor(order[::-1], device=cooc.device), best[2 ** n - 1]


def planted_borrowing_log(subjects: Sequence[Sequence[Sequence[int]]], borrowings: int, books_per_loan: int = 3,
                          same_subject: float = 0.7, same_area: float = 0.2,
                          generator: torch.Generator | None = None) -> list[list[int]]:
    """A synthetic library log with a planted two-level subject hierarchy.

    ``subjects[a][s]`` lists the books of subject ``s`` of area ``a``. Each loan picks a subject
    uniformly, then each of its ``books_per_loan`` books comes from that subject with probability
    ``same_subject``, from another subject of the same area with probability ``same_area``, else from
    the whole library (uniformly, repeats dropped). Returns the loans as lists of book ids.
    """
    leaves = [(a, list(books)) for a, area in enumerate(subjects) for books in area]
    area_books = [[b for books in area for b in books] for area in subjects]
    every_book = [b for area in area_books for b in area]
    draws = rand(borrowings, books_per_loan, 2, generator=generator, device="cpu").tolist()
    picks = randint(0, len(leaves), (borrowings,), generator=generator, device="cpu").tolist()
    log = []
    for pick, loan in zip(picks, draws):
        area, books = leaves[pick]
        chosen = []
        for u, v in loan:
            pool = books if u < same_subject else (
                area_books[area] if u < same_subject + same_area else every_book)
            chosen.append(pool[min(int(v * len(pool)), len(pool) - 1)])
        log.append(sorted(set(chosen)))
    return log


def basket_cooccurrence(baskets: Sequence[Sequence[int]], n: int,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """$C_{ij}$ = the number of baskets (loans) holding both i and j; zero diagonal, ``(n, n)`` float64."""
    counts = torch.zeros(n, n, dtype=torch.float64)
    for basket in baskets:
        index = torch.tensor(sorted(set(basket)), dtype=torch.long)
        counts[index[:, None], index[None, :]] += 1.0
    counts.fill_diagonal_(0.0)
    return counts.to(device)
