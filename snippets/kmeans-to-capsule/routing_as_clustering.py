"""Dynamic routing as clustering: the routing objective L never decreases over iterations."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.dynamic_routing import capsule_predictions, dynamic_routing, kmeans_predictions
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: draw on CPU, then move to the device

# A capsule layer: 32 input capsules (dim 8) predict 10 output capsules (dim 16) through W_ji.
# float64, so that "never decreases" below is exact arithmetic's claim, not float32 rounding
u = torch.randn(32, 8, generator=generator, dtype=torch.float64).to(device)
weights = (0.5 * torch.randn(32, 10, 16, 8, generator=generator, dtype=torch.float64)).to(device)
u_hat = capsule_predictions(u, weights)  # (32, 10, 16)
replaced = dynamic_routing(u_hat, iterations=8)
accumulated = dynamic_routing(u_hat, iterations=8, accumulate=True)
print("routing objective L after each iteration (one capsule layer):")
print(f"{'iteration':>9}{'b = <u_hat, v> (replace)':>26}{'b += <u_hat, squash(s)>':>26}")
for t in range(8):
    print(f"{t + 1:>9}{float(replaced.objective[t]):>26.2f}{float(accumulated.objective[t]):>26.2f}")

# K-Means as the special case u_hat_{j|i} = kappa * x_i: 300 points on the unit circle, 3 clusters.
true_angles = torch.tensor([0.3, 2.4, 4.3], dtype=torch.float64, device=device)
labels = torch.randint(3, (300,), generator=generator).to(device)
angles = true_angles[labels] + 0.3 * torch.randn(300, generator=generator, dtype=torch.float64).to(device)
x = torch.stack([angles.cos(), angles.sin()], dim=-1)
init = x[torch.randperm(300, generator=generator).to(device)[:3]]
kmeans = dynamic_routing(kmeans_predictions(x, 3, sharpness=10.0), iterations=10, init=init)
assignment = kmeans.coupling.argmax(-1)
found = torch.atan2(kmeans.centres[:, 1], kmeans.centres[:, 0]) % (2 * math.pi)
print("\nK-Means by routing: centre angles", " ".join(f"{a:.2f}" for a in found.sort().values.tolist()),
      "(true 0.30 2.40 4.30)")
agreement = max(float((assignment == perm[labels]).float().mean())
                for perm in torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]],
                                         device=device))
print(f"points assigned to their true cluster (best matching of labels): {agreement:.1%}")
print("L never decreases:", bool((kmeans.objective.diff() >= 0).all() and (replaced.objective.diff() >= 0).all()))

fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2))
steps = range(1, 9)
left.plot(steps, replaced.objective.cpu(), "o-", label=r"$b_{ij}=\langle\hat u_{j|i}, v_j\rangle$")
left.plot(steps, accumulated.objective.cpu(), "s--", label=r"$b_{ij}$ += $\langle\hat u_{j|i}, squash(s_j)\rangle$")
left.set_xlabel("routing iteration")
left.set_ylabel("objective L")
left.set_title("capsule layer", fontsize=9)
left.legend(fontsize=8)
points = x.cpu()
right.scatter(points[:, 0], points[:, 1], c=assignment.cpu(), cmap="viridis", s=6)
centres = kmeans.centres.cpu()
right.scatter(centres[:, 0], centres[:, 1], marker="x", color="red", s=60, label="centres $v_j$")
right.set_aspect("equal")
right.set_title("K-Means as routing (shared predictions)", fontsize=9)
right.legend(fontsize=8, loc="center")
fig.tight_layout()
