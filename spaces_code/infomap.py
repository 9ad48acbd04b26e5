r"""最小熵原理（五）：“层层递进”之社区发现与聚类 — https://kexue.fm/archives/7006

InfoMap (M. Rosvall, C. T. Bergstrom, *Maps of random walks on complex networks reveal community
structure*, PNAS 2008): a partition $M$ of the nodes into modules is good when it lets us describe a
random walk on the graph with few bits. With a two-level code (an index codebook for entering modules,
one codebook per module for its nodes and its exit), the expected description length per step is the
map equation

$$ L(M) = q_{\curvearrowright} H(\mathcal{Q})
       + \sum_{i=1}^{m} p_{\circlearrowright}^{i} H(\mathcal{P}^{i}), $$

where $p_\alpha$ is the stationary visit rate of node $\alpha$, $q_{i\curvearrowright}$ the rate at which
the walk exits module $i$, $q_\curvearrowright = \sum_i q_{i\curvearrowright}$ and
$p_{\circlearrowright}^{i} = q_{i\curvearrowright} + \sum_{\alpha\in i} p_\alpha$. Expanded, with
$\eta(x) = x\log_2 x$:

$$ L(M) = \eta(q_\curvearrowright) - 2\sum_i \eta(q_{i\curvearrowright}) - \sum_\alpha \eta(p_\alpha)
        + \sum_i \eta\big(q_{i\curvearrowright} + \textstyle\sum_{\alpha\in i} p_\alpha\big). $$

With one module nothing exits ($q=0$) and $L$ is the entropy $H(p)$ of the stationary distribution.

Graphs: undirected and weighted (``teleport=None``: $p_\alpha \propto$ strength of $\alpha$, the flow on an
edge is $w_{\alpha\beta}/\sum w$), or directed with teleportation probability $\tau$ (PageRank flow; the
teleportation steps count as exits, as in the 2008 paper). Lengths are in bits.
"""
from __future__ import annotations

import torch

from spaces_code.randomness import generator_device, rand


def flow_matrix(adjacency: torch.Tensor,
                teleport: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Stationary visit rates $p$ ``(n,)`` and step flows $F_{\alpha\beta}$ ``(n, n)`` of the random walk.

    $F_{\alpha\beta}$ is the probability that a step goes from $\alpha$ to $\beta$; rows sum to $p$.
    ``teleport=None``: ``adjacency`` must be symmetric (undirected graph). Otherwise a directed walk
    that follows an out-edge with probability $1-\tau$ and jumps to a uniform node with probability
    $\tau$ (nodes without out-edges always jump).
    """
    adjacency = adjacency.to(torch.float64)  # (n, n)
    if (adjacency < 0).any() or adjacency.sum() <= 0:
        raise ValueError("adjacency must be non-negative with at least one edge")
    n = adjacency.shape[-1]
    if teleport is None:
        if not torch.allclose(adjacency, adjacency.T):
            raise ValueError("teleport=None is for undirected graphs: adjacency must be symmetric")
        # $F_{\alpha\beta} = w_{\alpha\beta} / \sum w$, $p_\alpha = \sum_\beta F_{\alpha\beta}$
        flow = adjacency / adjacency.sum()
        return flow.sum(dim=1), flow
    if not 0.0 < teleport <= 1.0:
        raise ValueError(f"teleport must be in (0, 1], got {teleport}")
    out = adjacency.sum(dim=1, keepdim=True)  # (n, 1)
    uniform = torch.full_like(adjacency, 1.0 / n)
    transition = torch.where(out > 0, adjacency / out.clamp(min=1e-300), uniform)  # (n, n), rows sum to 1
    # $G = (1-\tau) T + \tau \mathbf{1}\mathbf{1}^\top / n$
    google = (1.0 - teleport) * transition + teleport * uniform
    # $p^\top = p^\top G$ with $\sum p = 1$: $p = \frac{\tau}{n}(I - (1-\tau) T^\top)^{-1}\mathbf{1}$
    eye = torch.eye(n, dtype=torch.float64, device=adjacency.device)
    p = torch.linalg.solve(eye - (1.0 - teleport) * transition.T,
                           torch.full((n,), teleport / n, dtype=torch.float64, device=adjacency.device))
    p = p / p.sum()
    return p, p[:, None] * google


def _plogp(x: torch.Tensor) -> torch.Tensor:
    # $\eta(x) = x \log_2 x$, with $\eta(0) = 0$
    return torch.where(x > 0, x * torch.log2(x.clamp(min=1e-300)), torch.zeros_like(x))


def module_flows(p: torch.Tensor, flow: torch.Tensor,
                 labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-module visit rates $\sum_{\alpha\in i}p_\alpha$ and exit rates $q_{i\curvearrowright}$.

    ``labels`` ``(..., n)`` holds module ids in ``[0, n)``; returns two ``(..., n)`` tensors indexed by
    module id (zero for unused ids).
    """
    n = p.shape[-1]
    members = torch.nn.functional.one_hot(labels.long(), n).to(p.dtype)  # (..., n nodes, n modules)
    visits = torch.einsum("a,...ai->...i", p, members)  # (..., n)
    # $\sum_{\alpha\in i}\sum_{\beta\in i} F_{\alpha\beta}$
    internal = ((members.mT @ flow) * members.mT).sum(dim=-1)  # (..., n)
    # $q_{i\curvearrowright} = \sum_{\alpha\in i}\sum_{\beta\notin i} F_{\alpha\beta}$ (rows of F sum to p)
    exits = (visits - internal).clamp(min=0.0)
    return visits, exits


def map_equation(p: torch.Tensor, flow: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""$L(M)$ in bits for the partition(s) ``labels`` ``(..., n)``; returns shape ``(...)``."""
    visits, exits = module_flows(p, flow, labels)
    # $L = \eta(q_\curvearrowright) - 2\sum_i\eta(q_{i\curvearrowright}) - \sum_\alpha\eta(p_\alpha)
    #      + \sum_i\eta(q_{i\curvearrowright} + \sum_{\alpha\in i}p_\alpha)$
    return (_plogp(exits.sum(dim=-1)) - 2.0 * _plogp(exits).sum(dim=-1) - _plogp(p).sum()
            + _plogp(exits + visits).sum(dim=-1))


def entropy_bits(p: torch.Tensor) -> torch.Tensor:
    r"""$H(p) = -\sum_\alpha p_\alpha\log_2 p_\alpha$."""
    return -_plogp(p).sum(dim=-1)


def canonical(labels: torch.Tensor) -> torch.Tensor:
    """Relabel modules 0, 1, 2, ... in order of first appearance (equal partitions compare equal)."""
    mapping: dict[int, int] = {}
    return torch.tensor([mapping.setdefault(int(label), len(mapping)) for label in labels.tolist()],
                        dtype=torch.long, device=labels.device)


def greedy_merge(p: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Agglomerative search: from singletons, merge the pair of modules that lowers L(M) most.

    Stops when no merge lowers L. Returns the canonical labels and L after each accepted merge
    (starting with the singleton partition). Each step scores all pairs at once from module-level
    flows: merging i and j gives $q = q_i + q_j - F_{ij} - F_{ji}$ and visits $v_i + v_j$.
    """
    n = p.shape[-1]
    labels = torch.arange(n, device=p.device)
    module_flow = flow.clone()  # (m, m): flow between modules, m = n at the start
    visits = p.clone()  # (m,)
    exits = (visits - torch.diagonal(module_flow)).clamp(min=0.0)  # (m,)
    history = [float(map_equation(p, flow, labels))]
    ids = list(range(n))  # module id (label value) of each row of module_flow
    while len(ids) > 1:
        # every merge (i, j) at once: its exit and visit rates, (m, m)
        merged_exit = (exits[:, None] + exits[None, :] - module_flow - module_flow.T).clamp(min=0.0)
        merged_visit = visits[:, None] + visits[None, :]
        eta_q, eta_qv = _plogp(exits), _plogp(exits + visits)
        # $L$ after the merge: replace the two modules' terms of the expanded map equation by one
        lengths = (_plogp(exits.sum() - exits[:, None] - exits[None, :] + merged_exit)
                   - 2.0 * (eta_q.sum() - eta_q[:, None] - eta_q[None, :] + _plogp(merged_exit))
                   - _plogp(p).sum()
                   + eta_qv.sum() - eta_qv[:, None] - eta_qv[None, :] + _plogp(merged_exit + merged_visit))
        lengths = lengths.masked_fill(~torch.ones_like(lengths, dtype=torch.bool).triu(1), float("inf"))
        best = int(torch.argmin(lengths))
        i, j = divmod(best, len(ids))
        if float(lengths[i, j]) >= history[-1] - 1e-12:
            break
        labels = torch.where(labels == ids[j], ids[i], labels)
        keep = [k for k in range(len(ids)) if k != j]
        module_flow[i, :] += module_flow[j, :]
        module_flow[:, i] += module_flow[:, j]
        module_flow = module_flow[keep][:, keep]
        visits[i] += visits[j]
        exits[i] = merged_exit[i, j]
        visits, exits = visits[keep], exits[keep]
        del ids[j]
        history.append(float(lengths[i, j]))
    return canonical(labels), history


def local_moves(p: torch.Tensor, flow: torch.Tensor, labels: torch.Tensor,
                max_sweeps: int = 20) -> torch.Tensor:
    """Refine a partition: move single nodes to the module (or a new one) that lowers L most."""
    labels = canonical(labels)
    n = p.shape[-1]
    current = float(map_equation(p, flow, labels))
    for _ in range(max_sweeps):
        improved = False
        for node in range(n):
            candidates = labels.repeat(n, 1)  # row j: node moved to module j (j unused = new module)
            candidates[:, node] = torch.arange(n, device=labels.device)
            lengths = map_equation(p, flow, candidates)
            best = int(torch.argmin(lengths))
            if float(lengths[best]) < current - 1e-12:
                labels, current, improved = canonical(candidates[best]), float(lengths[best]), True
        if not improved:
            break
    return labels


def set_partitions(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every partition of n nodes as restricted-growth label strings ``(Bell(n), n)``; n <= 10."""
    if not 1 <= n <= 10:
        raise ValueError(f"exhaustive enumeration is for 1 <= n <= 10 nodes, got {n}")
    rows: list[list[int]] = [[0]]
    for _ in range(n - 1):
        rows = [row + [k] for row in rows for k in range(max(row) + 2)]
    return torch.tensor(rows, dtype=torch.long, device=device)


def exhaustive_best(p: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The partition minimising L(M) among all partitions of a small graph, and its length."""
    partitions = set_partitions(p.shape[-1], p.device)
    lengths = map_equation(p, flow, partitions)
    best = int(torch.argmin(lengths))
    return partitions[best], float(lengths[best])


def planted_partition_graph(sizes: list[int], p_in: float, p_out: float,
                            generator: torch.Generator | None = None,
                            device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Undirected stochastic block model: edge probability p_in inside a block, p_out across.

    The coins are drawn on the generator's device and moved to ``device`` (default: the generator's
    device), so a CPU generator gives the same graph on every device.
    Returns ``(adjacency (n, n) float64 symmetric, no self-loops, planted labels (n,))``.
    """
    device = generator_device(generator) if device is None else torch.device(device)
    labels = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                     torch.tensor(sizes, device=device))  # (n,)
    n = labels.numel()
    probs = torch.where(labels[:, None] == labels[None, :], p_in, p_out)  # (n, n)
    coins = rand(n, n, generator=generator, device=device)
    upper = torch.triu(coins < probs, diagonal=1)
    adjacency = (upper | upper.T).to(torch.float64)
    return adjacency, labels
