r"""最小熵原理（五）：“层层递进”之社区发现与聚类 — https://kexue.fm/archives/7006

The hierarchical map equation (M. Rosvall, C. T. Bergstrom, *Multilevel compression of random walks on
networks reveals hierarchical organization in large integrated systems*, PLoS ONE 2011): the "层层递进"
of the title. The two-level code of :mod:`spaces_code.infomap` has one index codebook for entering
modules; with many modules that index becomes the expensive part. Nesting the modules in super-modules
gives each super-module its own small codebook for entering its submodules, and the top index only
names the few super-modules.

A hierarchy is a tree: the root is the whole graph, every inner module $\mathsf M$ has child modules,
every leaf module holds graph nodes. A codebook belongs to each module: an inner module's codebook
names its children and its own exit, a leaf's names its nodes and its exit (the root has no exit).
The expected description length per step of the walk is

$$L(\mathsf M) = \sum_{\text{inner } \mathsf M} \Big(q_{\mathsf M\curvearrowright}
   + \sum_{\mathsf C \in \mathsf M} q_{\mathsf C\curvearrowright}\Big)
   H\big(q_{\mathsf M\curvearrowright}, \{q_{\mathsf C\curvearrowright}\}_{\mathsf C\in\mathsf M}\big)
 + \sum_{\text{leaf } \mathsf M} \Big(q_{\mathsf M\curvearrowright} + \sum_{\alpha\in\mathsf M} p_\alpha\Big)
   H\big(q_{\mathsf M\curvearrowright}, \{p_\alpha\}_{\alpha\in\mathsf M}\big),$$

with $H$ the entropy of the normalised rates and $q_{\mathsf M\curvearrowright} = \sum_{\alpha\in\mathsf M}
\sum_{\beta\notin\mathsf M} F_{\alpha\beta}$ the exit rate of the node set of $\mathsf M$ (stationary flow
enters a set as often as it leaves it, so exit rates also price the entries). A root whose children
are leaves gives back the two-level map equation; a root that is itself a leaf gives $H(p)$.

Trees are nested lists: ``[[0, 1, 2], [3, 4]]`` is a two-level partition, ``[[[0, 1], [2, 3]], [[4, 5]]]``
a three-level one. Lengths are in bits.
"""
from __future__ import annotations

from typing import Union

import torch

from spaces_code.randomness import generator_device, rand

Tree = Union[list[int], list["Tree"]]


def _is_leaf(module: Tree) -> bool:
    return all(isinstance(item, int) for item in module)


def nodes_of(module: Tree) -> list[int]:
    """The graph nodes under a module, in order."""
    return list(module) if _is_leaf(module) else [a for child in module for a in nodes_of(child)]


def exit_rate(flow: torch.Tensor, p: torch.Tensor, nodes: list[int]) -> torch.Tensor:
    r"""$q_{\mathsf M\curvearrowright} = \sum_{\alpha\in\mathsf M} p_\alpha
    - \sum_{\alpha,\beta\in\mathsf M} F_{\alpha\beta}$ (rows of $F$ sum to $p$)."""
    index = torch.tensor(nodes, dtype=torch.long, device=p.device)
    return (p[index].sum() - flow[index][:, index].sum()).clamp(min=0.0)


def _codebook_length(rates: torch.Tensor) -> torch.Tensor:
    # $(\sum_k r_k)\,H(r / \sum_k r_k) = \eta(\sum_k r_k) - \sum_k \eta(r_k)$, $\eta(x) = x\log_2 x$
    eta = torch.where(rates > 0, rates * torch.log2(rates.clamp(min=1e-300)), torch.zeros_like(rates))
    total = rates.sum()
    return (total * torch.log2(total) if total > 0 else total) - eta.sum()


def codebook_lengths(p: torch.Tensor, flow: torch.Tensor, tree: Tree) -> list[tuple[str, float]]:
    """Each codebook's share of $L$: ``(path, bits per step)`` for every module, root first.

    Paths name modules by child indices (``"root"``, ``"0"``, ``"0.1"``, ...). The shares sum to
    :func:`multilevel_map_equation`.
    """
    shares: list[tuple[str, float]] = []

    def visit(module: Tree, path: str, exit_q: torch.Tensor) -> None:
        if _is_leaf(module):
            index = torch.tensor(module, dtype=torch.long, device=p.device)
            # leaf codebook: its exit and its nodes
            shares.append((path, float(_codebook_length(torch.cat([exit_q[None], p[index]])))))
            return
        child_exits = [exit_rate(flow, p, nodes_of(child)) for child in module]
        # inner codebook: its exit and the entries of its children
        shares.append((path, float(_codebook_length(torch.stack([exit_q, *child_exits])))))
        for k, (child, q) in enumerate(zip(module, child_exits)):
            visit(child, str(k) if path == "root" else f"{path}.{k}", q)

    visit(tree, "root", torch.zeros((), dtype=p.dtype, device=p.device))  # the root never exits
    return shares


def multilevel_map_equation(p: torch.Tensor, flow: torch.Tensor, tree: Tree) -> float:
    r"""$L(\mathsf M)$ in bits of the hierarchy ``tree`` over all ``n`` nodes (see the module docstring)."""
    covered = sorted(nodes_of(tree))
    if covered != list(range(p.shape[-1])):
        raise ValueError("the tree must hold every node exactly once")
    return sum(bits for _, bits in codebook_lengths(p, flow, tree))


def two_level_tree(labels: torch.Tensor) -> Tree:
    """The tree of a flat partition (module labels ``(n,)``): the root's children are leaves."""
    modules: dict[int, list[int]] = {}
    for node, label in enumerate(labels.tolist()):
        modules.setdefault(label, []).append(node)
    return list(modules.values())


def nested_block_graph(n_super: int, n_sub: int, size: int, p_sub: float, p_super: float, p_out: float,
                       generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> tuple[torch.Tensor, Tree]:
    """Undirected hierarchical block model: ``n_super`` super-modules of ``n_sub`` submodules of ``size``
    nodes; an edge with probability ``p_sub`` inside a submodule, ``p_super`` between submodules of one
    super-module, ``p_out`` across super-modules. Coins are drawn on the generator's device and moved
    to ``device`` (default: the generator's). Returns ``(adjacency (n, n) float64, planted tree)``.
    """
    n = n_super * n_sub * size
    node = torch.arange(n)
    sub, sup = node // size, node // (size * n_sub)
    probs = torch.where(sup[:, None] != sup[None, :], p_out,
                        torch.where(sub[:, None] != sub[None, :], p_super, p_sub))  # (n, n)
    coins = rand(n, n, generator=generator, device="cpu")  # (n, n)
    upper = torch.triu(coins < probs, diagonal=1)
    adjacency = (upper | upper.T).to(torch.float64)
    tree = [[list(range((s * n_sub + b) * size, (s * n_sub + b + 1) * size)) for b in range(n_sub)]
            for s in range(n_super)]
    return adjacency.to(generator_device(generator) if device is None else device), tree
