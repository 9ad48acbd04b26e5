"""GD with and without clipping on f = cosh(x) + cosh(y), which is (L0, L1)-smooth but not L-smooth."""
import matplotlib.pyplot as plt
import torch

from spaces_code.gradient_clipping import DescentConfig, clip_scale, cosh_objective, gradient_descent
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
make_generator(0)
theta0 = torch.tensor([4.0, -3.0], dtype=torch.float64, device=device)

runs = {  # name: (plot label, config)
    "plain GD, lr=1": ("plain GD, lr=1", DescentConfig(lr=1.0, steps=40, mode="none")),
    "plain GD, lr=0.05": ("plain GD, lr=0.05", DescentConfig(lr=0.05, steps=40, mode="none")),
    "clip min{1, γ/|g|}, lr=1": (r"clip $\min\{1, \gamma/\|g\|\}$, lr=1",
                                 DescentConfig(lr=1.0, steps=40, mode="min", gamma=1.0)),
    "clip γ/(|g|+γ), lr=1": (r"clip $\gamma/(\|g\|+\gamma)$, lr=1",
                             DescentConfig(lr=1.0, steps=40, mode="smooth", gamma=1.0)),
}
print(f"{'run':<26} {'f-2 @ step 1':>13} {'@ 5':>10} {'@ 40':>10}")
gaps = {}
for name, (label, config) in runs.items():
    _, values = gradient_descent(cosh_objective, theta0, config)
    gaps[label] = g = (values - 2.0).cpu()  # min f = 2 at the origin
    print(f"{name:<26} {g[1].item():13.3e} {g[5].item():10.3e} {g[40].item():10.3e}")

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
for label, gap in gaps.items():
    steps = torch.arange(len(gap))
    finite = torch.isfinite(gap)
    ax.semilogy(steps[finite], gap[finite].clamp_min(1e-16), marker=".", label=label)
ax.set_xlabel("step")
ax.set_ylabel(r"$f(\theta) - \min f$")
ax.set_title("plain GD at lr=1 overflows after 2 steps")
ax.legend(fontsize=7)

norm = torch.logspace(-2, 2, 200, dtype=torch.float64)
s_min, s_smooth = clip_scale(norm, 1.0, "min"), clip_scale(norm, 1.0, "smooth")
ax2.loglog(norm, s_min, label=r"$\min\{1, \gamma/\|g\|\}$")
ax2.loglog(norm, s_smooth, label=r"$\gamma/(\|g\|+\gamma)$")
ax2.loglog(norm, 0.5 * s_min, "--", label=r"$\frac{1}{2}\min\{1, \gamma/\|g\|\}$")
ax2.set_xlabel(r"$\|g\| / \gamma$")
ax2.set_title("the two clipping factors")
ax2.legend(fontsize=7)
fig.tight_layout()
