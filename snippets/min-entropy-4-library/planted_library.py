"""A library whose loans follow a subject hierarchy: the exact best shelf, the spectral shelf, and a 2-D map."""
import matplotlib.pyplot as plt

from spaces_code.linear_arrangement import (arrangement_cost, basket_cooccurrence, exact_arrangement,
                                            improve_by_swaps, planted_borrowing_log, positions_from_order,
                                            random_arrangement_costs, spectral_embedding, spectral_order)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the log is drawn on CPU

# two areas (maths, literature), two subjects each, three books per subject
names = ["algebra", "calculus", "poetry", "novels"]
subjects = [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
labels = [f"{names[b // 3]}-{b % 3}" for b in range(12)]
# each loan: 3 books, each from the loan's subject w.p. 0.7, from its area w.p. 0.2, else anywhere
log = planted_borrowing_log(subjects, 300, books_per_loan=3, same_subject=0.7, same_area=0.2,
                            generator=generator)
cooc = basket_cooccurrence(log, 12, device=device)
print(f"{len(log)} loans, {int(cooc.sum().item()) // 2} co-borrowed pairs; first loans:",
      "; ".join(", ".join(labels[b] for b in loan) for loan in log[:3]))

optimum_order, optimum = exact_arrangement(cooc)  # dynamic programming over the 2^12 subsets
spectral = spectral_order(cooc)
improved = improve_by_swaps(cooc, spectral)
random_costs = random_arrangement_costs(cooc, 2000, generator)
print(f"\n{'shelf':<22}{'cost':>8}{'/ optimum':>11}")
for name, cost in (("random (mean of 2000)", random_costs.mean().item()),
                   ("random (best of 2000)", random_costs.min().item()),
                   ("spectral order", arrangement_cost(cooc, positions_from_order(spectral)).item()),
                   ("spectral + swaps", arrangement_cost(cooc, positions_from_order(improved)).item()),
                   ("exact optimum", optimum)):
    print(f"{name:<22}{cost:>8.0f}{cost / optimum:>11.3f}")
print("\nexact optimum, left to right:", " ".join(labels[b] for b in optimum_order.tolist()))
print("spectral + swaps:             ", " ".join(labels[b] for b in improved.tolist()))

# keep two eigenvectors instead of one: every book gets a 2-D vector
vectors = spectral_embedding(cooc, 2).cpu()
fig, (ax_map, ax_hist) = plt.subplots(1, 2, figsize=(8.5, 3.6))
for s, (name, marker) in enumerate(zip(names, "os^v")):
    points = vectors[3 * s:3 * s + 3]
    ax_map.scatter(points[:, 0], points[:, 1], marker=marker, s=40, label=name)
for b, (x, y) in enumerate(vectors.tolist()):
    ax_map.annotate(labels[b], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
ax_map.axvline(0, color="gray", lw=0.5)
ax_map.set_xlabel("1st vector (the shelf order)")
ax_map.set_ylabel("2nd vector")
ax_map.set_title("books as 2-D vectors", fontsize=9)
ax_map.legend(fontsize=7)
ax_hist.hist(random_costs.cpu().numpy(), bins=40, color="lightgray", label="random shelves")
ax_hist.axvline(arrangement_cost(cooc, positions_from_order(spectral)).item(), color="tab:blue",
                label="spectral order")
ax_hist.axvline(optimum, color="tab:red", ls="--", label="exact optimum")
ax_hist.set_xlabel(r"cost $\sum_{i<j} C_{ij}|x_i - x_j|$")
ax_hist.legend(fontsize=7)
fig.tight_layout()
