"""The map equation L(M) on a graph with three planted communities; a greedy search finds them."""
import matplotlib.pyplot as plt
import torch

from spaces_code.infomap import (entropy_bits, flow_matrix, greedy_merge, local_moves, map_equation,
                                 planted_partition_graph)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the graph is drawn on CPU, then moved

adjacency, planted = planted_partition_graph([10, 8, 6], p_in=0.6, p_out=0.05,
                                             generator=generator, device=device)
n = planted.numel()
print(f"undirected graph: {n} nodes, {int(adjacency.sum().item()) // 2} edges, planted blocks 10/8/6")

p, flow = flow_matrix(adjacency)  # undirected: p is proportional to the degree
merged, history = greedy_merge(p, flow)
found = local_moves(p, flow, merged)
partitions = {
    "one module": torch.zeros(n, dtype=torch.long, device=device),
    "singletons": torch.arange(n, device=device),
    "planted": planted,
    "greedy + local moves": found,
}
print(f"{'partition':<22}{'modules':>8}{'L(M) bits':>11}")
for name, labels in partitions.items():
    print(f"{name:<22}{labels.unique().numel():>8}{map_equation(p, flow, labels).item():>11.4f}")
print(f"H(p) = {entropy_bits(p).item():.4f} bits (= L of one module)")
print(f"found partition equals the planted one: "
      f"{bool((found[:, None] == found[None, :]).eq(planted[:, None] == planted[None, :]).all())}")

fig, (ax_graph, ax_merge) = plt.subplots(1, 2, figsize=(8, 3.5))
order = torch.argsort(found * n + torch.arange(n, device=device)).cpu()
ax_graph.imshow(adjacency.cpu()[order][:, order], cmap="Greys", interpolation="nearest")
for boundary in torch.cumsum(torch.bincount(found.cpu()), 0)[:-1].tolist():
    ax_graph.axhline(boundary - 0.5, color="tab:red", lw=1)
    ax_graph.axvline(boundary - 0.5, color="tab:red", lw=1)
ax_graph.set_title("adjacency, sorted by found module", fontsize=10)
ax_graph.set_xticks([])
ax_graph.set_yticks([])
ax_merge.plot([n - k for k in range(len(history))], history, "o-", ms=3, label="greedy merges")
ax_merge.axhline(entropy_bits(p).item(), color="gray", ls="--", label="one module = H(p)")
ax_merge.set_xlabel("number of modules")
ax_merge.set_ylabel("L(M) (bits)")
ax_merge.invert_xaxis()
ax_merge.legend(fontsize=8)
fig.tight_layout()
