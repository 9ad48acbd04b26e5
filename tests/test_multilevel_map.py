"""Hierarchical map equation (#5, "层层递进"): the extra level saves bits when the modules nest."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.infomap import entropy_bits, flow_matrix, map_equation, planted_partition_graph
from spaces_code.multilevel_map import (codebook_lengths, multilevel_map_equation, nested_block_graph,
                                        nodes_of, two_level_tree)


def naive_multilevel(p, flow, tree) -> float:
    """Codebook by codebook in plain Python floats: rates, their sum, their entropy."""
    p, flow = p.double().cpu().tolist(), flow.double().cpu().tolist()

    def exit_of(nodes):
        inside = set(nodes)
        return sum(flow[a][b] for a in nodes for b in range(len(p)) if b not in inside)

    def book(rates):
        total = sum(rates)
        return -sum(r * math.log2(r / total) for r in rates if r > 0) if total > 0 else 0.0

    def walk(module, exit_q):
        if all(isinstance(x, int) for x in module):
            return book([exit_q] + [p[a] for a in module])
        exits = [exit_of(nodes_of(child)) for child in module]
        return book([exit_q] + exits) + sum(walk(c, q) for c, q in zip(module, exits))

    return walk(tree, 0.0)


@pytest.mark.parametrize("teleport", [None, 0.15])
def test_two_level_tree_is_the_map_equation(device, generator, teleport):
    adjacency, planted = planted_partition_graph([5, 4, 3], 0.7, 0.1, generator)
    p, flow = flow_matrix(adjacency.to(device), teleport)
    for labels in (planted, torch.randint(0, 4, (12,), generator=generator), torch.arange(12)):
        expected = map_equation(p, flow, labels.to(device)).item()
        assert abs(multilevel_map_equation(p, flow, two_level_tree(labels)) - expected) < 1e-10
    # a root that is itself a leaf: one codebook of the nodes, L = H(p)
    assert abs(multilevel_map_equation(p, flow, list(range(12))) - entropy_bits(p).item()) < 1e-10


@pytest.mark.parametrize("teleport", [None, 0.15])
def test_three_levels_match_codebook_by_codebook(device, generator, teleport):
    adjacency, tree = nested_block_graph(2, 3, 3, 0.8, 0.2, 0.05, generator)
    p, flow = flow_matrix(adjacency.to(device), teleport)
    uneven = [[[0, 1], [2, 3, 4], [5]], [6, 7, 8], [[9, 10, 11, 12], [[13, 14], [15, 16, 17]]]]  # 4 levels
    for t in (tree, uneven):
        shares = codebook_lengths(p, flow, t)
        length = multilevel_map_equation(p, flow, t)
        assert abs(length - sum(bits for _, bits in shares)) < 1e-12
        assert abs(length - naive_multilevel(p, flow, t)) < 1e-10
        assert all(bits >= 0 for _, bits in shares)
    with pytest.raises(ValueError):
        multilevel_map_equation(p, flow, [[0, 1], [2]])  # not every node


def lengths_of(p, flow, tree):
    """L of the three-level tree, of its fine (submodules) and coarse (super-modules) two-level cuts."""
    fine = [sub for sup in tree for sub in sup]
    coarse = [nodes_of(sup) for sup in tree]
    return (multilevel_map_equation(p, flow, tree), multilevel_map_equation(p, flow, fine),
            multilevel_map_equation(p, flow, coarse))


def test_extra_level_saves_bits_when_modules_nest(device, generator):
    """3 super-modules of 4 submodules of 6 nodes: the three-level code beats both two-level codes."""
    adjacency, tree = nested_block_graph(3, 4, 6, 0.8, 0.1, 0.005, generator)
    p, flow = flow_matrix(adjacency.to(device))
    three, fine, coarse = lengths_of(p, flow, tree)
    # sweep of 200 seeds: fine - three >= 0.146 bits, coarse - three >= 0.070 bits; bound 0.023
    assert three < min(fine, coarse) - 0.023


@pytest.mark.parametrize("teleport,margin", [(None, 0.004), (0.15, 0.06)])
def test_extra_level_costs_bits_when_modules_do_not_nest(device, generator, teleport, margin):
    """The same 12 blocks without super-structure (p_super = p_out): grouping them only adds codebooks."""
    adjacency, tree = nested_block_graph(3, 4, 6, 0.8, 0.005, 0.005, generator)
    p, flow = flow_matrix(adjacency.to(device), teleport)
    three, fine, _ = lengths_of(p, flow, tree)
    # sweep of 200 seeds: three - fine >= 0.0125 bits (undirected), 0.186 (teleport 0.15); bound 1/3 of it
    assert three > fine + margin


def test_nested_graph_comes_from_the_generator_only(seed):
    """Same generator seed under two different global seeds: the same graph."""
    graphs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        graphs.append(nested_block_graph(2, 2, 3, 0.9, 0.3, 0.1, torch.Generator().manual_seed(seed))[0])
    assert torch.equal(graphs[0], graphs[1]) and graphs[0].device.type == "cpu"
    assert torch.equal(graphs[0], graphs[0].T) and float(graphs[0].diagonal().abs().sum()) == 0


def test_multilevel_on_device_matches_cpu(device, generator):
    """Device parity: one graph drawn on CPU; L of a three-level tree on ``device`` equals CPU's (float64)."""
    adjacency, tree = nested_block_graph(2, 3, 4, 0.8, 0.2, 0.02, generator)
    for teleport in (None, 0.15):
        on_cpu = multilevel_map_equation(*flow_matrix(adjacency, teleport), tree)
        on_device = multilevel_map_equation(*flow_matrix(adjacency.to(device), teleport), tree)
        assert abs(on_device - on_cpu) < 1e-10
