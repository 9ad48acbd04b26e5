"""Random projection A ~ N(0, 1/n): how much pairwise distances move as the target dimension n grows."""
import matplotlib.pyplot as plt
import torch

from spaces_code.random_projection import distance_distortion, jl_dimension, random_projection
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers whichever device computes
n_points, m = 200, 1000
x = torch.randn(n_points, m, generator=generator).to(device)  # 200 points in R^1000
print(f"N = {n_points} points in m = {m} dims; JL bound for eps = 0.5: n >= {jl_dimension(n_points, 0.5)}")
print(f"  (that n only guarantees success with probability >= 1/N; for failure probability <= 1e-6: "
      f"n >= {jl_dimension(n_points, 0.5, failure_probability=1e-6)})")
print(f"{'n':>5} {'min':>6} {'5%':>6} {'95%':>6} {'max':>6}   (ratio |Au-Av|^2 / |u-v|^2)")
dims = [8, 16, 32, 64, 128, 256, 512]
quantiles = torch.tensor([0.0, 0.05, 0.95, 1.0], device=device)
rows = []
for dim in dims:
    ratio = distance_distortion(x, random_projection(x, dim, generator)) ** 2
    rows.append(torch.quantile(ratio, quantiles).tolist())
    print(f"{dim:5d} " + " ".join(f"{q:6.3f}" for q in rows[-1]))

lo, p5, p95, hi = zip(*rows)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.fill_between(dims, lo, hi, alpha=0.2, label="min-max over 19900 pairs")
ax.fill_between(dims, p5, p95, alpha=0.4, label="5%-95%")
bound = torch.tensor(dims, dtype=torch.float64)
ax.plot(dims, 1 + 2 * (2 / bound).sqrt(), "k--", lw=1, label=r"$1 \pm 2\sqrt{2/n}$")
ax.plot(dims, 1 - 2 * (2 / bound).sqrt(), "k--", lw=1)
ax.axhline(1, color="gray", lw=0.5)
ax.set_xscale("log", base=2)
ax.set_xlabel("target dimension n")
ax.set_ylabel("squared distance ratio")
ax.set_title("JL random projection: distortion vs dimension")
ax.legend(fontsize=8)
fig.tight_layout()
