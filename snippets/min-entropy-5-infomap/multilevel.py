"""层层递进: a three-level code saves bits on nested communities, and costs bits where there is no nesting."""
import matplotlib.pyplot as plt
import torch

from spaces_code.infomap import entropy_bits, flow_matrix, greedy_merge
from spaces_code.multilevel_map import (codebook_lengths, multilevel_map_equation, nested_block_graph,
                                        nodes_of, two_level_tree)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the graph is drawn on CPU, then moved

# 3 super-modules x 4 submodules x 6 nodes: edges inside a submodule with prob. 0.8, between submodules
# of one super-module 0.1, across super-modules 0.005
adjacency, tree = nested_block_graph(3, 4, 6, 0.8, 0.1, 0.005, generator=generator, device=device)
p, flow = flow_matrix(adjacency)
n = adjacency.shape[0]
fine = [sub for sup in tree for sub in sup]
coarse = [nodes_of(sup) for sup in tree]
found = two_level_tree(greedy_merge(p, flow)[0])  # the greedy search of the two-level code


def by_level(t):
    """Bits per step spent in the index (root) codebook, the middle codebooks and the leaf codebooks."""
    shares = dict(codebook_lengths(p, flow, t))
    leaves = [path for path in shares if not any(other.startswith(path + ".") for other in shares)]
    leaves = ["root"] if len(shares) == 1 else [path for path in leaves if path != "root"]
    index = 0.0 if "root" in leaves else shares["root"]
    middle = sum(bits for path, bits in shares.items() if path != "root" and path not in leaves)
    return index, middle, sum(shares[path] for path in leaves)


codes = {"one module": list(range(n)), "2 levels, 3 super-modules": coarse,
         "2 levels, 12 submodules": fine, f"2 levels, search ({len(found)} modules)": found,
         "3 levels, 3 x 4": tree}
print(f"nested graph: {n} nodes, {int(adjacency.sum().item()) // 2} edges;  H(p) = {entropy_bits(p).item():.4f} bits")
print(f"{'code':<30}{'L bits':>8}{'index':>8}{'middle':>8}{'leaves':>8}")
rows = {}
for name, t in codes.items():
    rows[name] = by_level(t)
    print(f"{name:<30}{multilevel_map_equation(p, flow, t):>8.4f}" + "".join(f"{x:>8.4f}" for x in rows[name]))

# control: the same 12 blocks, no super-structure (0.005 between all blocks)
flat, flat_tree = nested_block_graph(3, 4, 6, 0.8, 0.005, 0.005, generator=generator, device=device)
p_flat, flow_flat = flow_matrix(flat)
flat_fine = multilevel_map_equation(p_flat, flow_flat, [sub for sup in flat_tree for sub in sup])
flat_three = multilevel_map_equation(p_flat, flow_flat, flat_tree)
print(f"\nno nesting (same blocks, p_super = p_out): 2 levels {flat_fine:.4f}, 3 levels {flat_three:.4f} bits")

fig, (ax_graph, ax_bars) = plt.subplots(1, 2, figsize=(8.5, 3.6))
ax_graph.imshow(adjacency.cpu(), cmap="Greys", interpolation="nearest")
for k in range(1, 12):
    ax_graph.axhline(6 * k - 0.5, color="tab:blue" if k % 4 else "tab:red", lw=0.6 if k % 4 else 1.2)
    ax_graph.axvline(6 * k - 0.5, color="tab:blue" if k % 4 else "tab:red", lw=0.6 if k % 4 else 1.2)
ax_graph.set_title("nested blocks: 3 super-modules (red) x 4", fontsize=9)
ax_graph.set_xticks([])
ax_graph.set_yticks([])
names = list(rows)[1:]
bottom = torch.zeros(len(names))
for k, (label, color) in reversed(list(enumerate((("index codebook", "tab:red"), ("middle codebooks", "tab:orange"),
                                                  ("leaf codebooks", "tab:blue"))))):
    heights = torch.tensor([rows[name][k] for name in names])
    ax_bars.bar(range(len(names)), heights, bottom=bottom, color=color, label=label)
    bottom += heights
for x, total in enumerate(bottom.tolist()):
    ax_bars.text(x, total + 0.05, f"{total:.2f}", ha="center", fontsize=8)
ax_bars.set_xticks(range(len(names)), [name.replace(", ", "\n") for name in names], fontsize=7)
ax_bars.set_ylim(0, bottom.max().item() + 0.6)
ax_bars.set_ylabel("L (bits per step)")
ax_bars.legend(fontsize=7, loc="upper right")
fig.tight_layout()
