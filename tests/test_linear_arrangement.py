"""Bookshelf of #29: the arrangement cost, its swap gains, and an order that beats random shelves."""
from __future__ import annotations

import itertools

import pytest
import torch

from spaces_code.linear_arrangement import (arrangement_cost, cooccurrence_matrix, improve_by_swaps,
                                            positions_from_order, random_arrangement_costs,
                                            spectral_embedding, spectral_order, swap_gains)


def naive_cost(cooc: torch.Tensor, positions: torch.Tensor) -> float:
    c, x = cooc.double().cpu().tolist(), positions.cpu().tolist()
    return sum(c[i][j] * abs(x[i] - x[j]) for i in range(len(x)) for j in range(i + 1, len(x)))


def planted_topics(blocks: int, size: int, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-occurrence counts: many within a topic block, few across; items shuffled."""
    n = blocks * size
    topic = torch.arange(n, device=device) // size
    rate = torch.where(topic[:, None] == topic[None, :], 5.0, 0.3)
    counts = torch.poisson(rate.double(), generator=generator).triu(1)
    cooc = counts + counts.T
    perm = torch.randperm(n, generator=generator, device=device)
    return cooc[perm][:, perm], topic[perm]


def test_cost_matches_naive_sum(device, generator):
    cooc, _ = planted_topics(3, 4, generator, device)
    orders = torch.stack([torch.randperm(12, generator=generator, device=device) for _ in range(5)])
    costs = arrangement_cost(cooc, positions_from_order(orders).view(5, 12))  # batch dimension kept
    for order, cost in zip(orders, costs):
        assert abs(cost.item() - naive_cost(cooc, positions_from_order(order))) < 1e-9


def test_swap_gains_equal_recomputed_costs(device, generator):
    cooc, _ = planted_topics(2, 4, generator, device)
    positions = positions_from_order(torch.randperm(8, generator=generator, device=device))
    gains = swap_gains(cooc, positions)
    base = naive_cost(cooc, positions)
    for a, b in itertools.product(range(8), repeat=2):
        swapped = positions.clone()
        swapped[[a, b]] = swapped[[b, a]]
        assert abs(gains[a, b].item() - (naive_cost(cooc, swapped) - base)) < 1e-9


def test_arrangement_beats_random(device, generator):
    cooc, topic = planted_topics(4, 6, generator, device)
    random_costs = random_arrangement_costs(cooc, 2000, generator)
    spectral = spectral_order(cooc)
    improved = improve_by_swaps(cooc, spectral)
    spectral_cost = arrangement_cost(cooc, positions_from_order(spectral)).item()
    improved_cost = arrangement_cost(cooc, positions_from_order(improved)).item()
    assert improved_cost <= spectral_cost + 1e-9  # swaps never make it worse
    assert improved_cost < random_costs.min().item()  # better than every one of 2000 random shelves
    assert improved_cost < 0.6 * random_costs.mean().item()
    assert sorted(improved.tolist()) == list(range(24))  # still a permutation
    shelf_topics = topic[improved].tolist()  # topics come out in contiguous runs
    assert sum(a != b for a, b in zip(shelf_topics, shelf_topics[1:])) == 3


def test_spectral_order_recovers_a_path(device, generator):
    """Items used together only with their neighbours on a hidden line: the line comes back."""
    n = 9
    path = torch.zeros(n, n, dtype=torch.float64, device=device)
    idx = torch.arange(n - 1, device=device)
    path[idx, idx + 1] = path[idx + 1, idx] = 1.0
    perm = torch.randperm(n, generator=generator, device=device)
    shuffled = path[perm][:, perm]
    order = spectral_order(shuffled)
    assert perm[order].tolist() in (list(range(n)), list(range(n))[::-1])
    assert arrangement_cost(shuffled, positions_from_order(order)).item() == n - 1  # the optimum


def test_spectral_embedding_solves_generalised_eigenproblem(device, generator):
    cooc, _ = planted_topics(3, 4, generator, device)
    cooc = cooc + 0.1 * (1 - torch.eye(12, dtype=torch.float64, device=device))  # connected
    vectors = spectral_embedding(cooc, 3)  # (12, 3)
    degree = torch.diag(cooc.sum(1))
    laplacian = degree - cooc
    lam = torch.diag(vectors.T @ laplacian @ vectors) / torch.diag(vectors.T @ degree @ vectors)
    torch.testing.assert_close(laplacian @ vectors, degree @ vectors * lam, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(vectors.T @ degree @ torch.ones(12, dtype=torch.float64, device=device),
                               torch.zeros(3, dtype=torch.float64, device=device), atol=1e-9, rtol=0)
    with pytest.raises(ValueError):
        spectral_embedding(torch.zeros(3, 3, dtype=torch.float64, device=device))
    with pytest.raises(ValueError):
        spectral_embedding(cooc, 12)


def test_cooccurrence_counts(device):
    sentences = [["图书", "数学", "的", "代数"], ["代数", "数学"], ["图书"]]
    cooc = cooccurrence_matrix(sentences, ["图书", "数学", "代数"], window=2, device=device)
    expected = torch.tensor([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=torch.float64, device=device)
    assert torch.equal(cooc, expected)
    assert torch.equal(cooccurrence_matrix(sentences, ["图书", "代数"], window=3, device=device),
                       torch.tensor([[0, 1], [1, 0]], dtype=torch.float64, device=device))
    assert torch.equal(cooccurrence_matrix([], ["a"], device=device), torch.zeros(1, 1, dtype=torch.float64,
                                                                                  device=device))
    with pytest.raises(ValueError):
        cooccurrence_matrix(sentences, ["图书"], window=0)
