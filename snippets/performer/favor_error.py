"""FAVOR+: how well m random features reproduce exp(q.k/sqrt(d)) and softmax attention (i.i.d. and
orthogonal positive features, and the trigonometric ones they replace), with error bars."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.attention_masks import attention
from spaces_code.performer import (gaussian_projection, performer_attention, positive_random_features,
                                   relative_kernel_mse, trigonometric_random_features)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # CPU generator: projections drawn on CPU, so every device sees the same
n, d, repeats = 64, 16, 200
q, k = (0.5 * torch.randn(n, d, generator=generator).to(device) for _ in range(2))  # |q|^2 / sqrt(d) ~ 1
v = torch.randn(n, d, generator=generator).to(device)
scale = d**-0.25
kernel = torch.exp((q * scale) @ (k * scale).T)  # exact exp(q.k / sqrt(d)), (n, n)
exact = attention(q, k, v)


def mean_and_error(values):
    """Mean over the independent projections and twice its standard error (a ~95% interval)."""
    return values.mean().item(), 2 * values.std().item() / math.sqrt(values.numel())


feature_counts = [8, 16, 32, 64, 128, 256]
small = kernel <= kernel.quantile(0.25)  # the smallest quarter of the weights (q.k most negative)
errors = {}  # (kind, m) -> mean +- 2 s.e. of: kernel error, error on the small entries, attention error
for kind in ("i.i.d.", "orthogonal", "trigonometric"):
    for m in feature_counts:
        w = gaussian_projection(m, d, kind == "orthogonal", generator=generator, device=device,
                                draws=repeats)  # (repeats, m, d): independent projections
        features = trigonometric_random_features if kind == "trigonometric" else positive_random_features
        estimate = features(q * scale, w) @ features(k * scale, w).mT  # (repeats, n, n)
        kernel_err = (estimate - kernel).norm(dim=(-2, -1)) / kernel.norm()
        small_err = ((estimate - kernel).abs() / kernel)[:, small].mean(-1)
        if kind == "trigonometric":  # the same normalised attention; its normaliser may even be negative
            output = (estimate @ v) / estimate.sum(-1, keepdim=True)
        else:
            output = performer_attention(q, k, v, w)
        attention_err = (output - exact).norm(dim=(-2, -1)) / exact.norm()
        errors[kind, m] = tuple(mean_and_error(e) for e in (kernel_err, small_err, attention_err))

kinds = ("i.i.d.", "orthogonal", "trigonometric")
for title, column in (("exp(QK^T/sqrt d), relative Frobenius error", 0),
                      ("smallest quarter of the entries, mean relative error", 1),
                      ("attention output, relative Frobenius error", 2)):
    print(f"{title}: mean +- 2 s.e. over {repeats} projections (n={n}, d={d})")
    print(f"{'m':>5}" + "".join(f"{kind:>17}" for kind in kinds))
    for m in feature_counts:
        print(f"{m:>5}" + "".join(f"{errors[kind, m][column][0]:>10.3f}+-{errors[kind, m][column][1]:<5.3f}"
                                  for kind in kinds))
    print()

# one kernel entry e^{q.k} with |q| = |k| = 1.5, as the angle between them goes from 0 to 180 degrees
angles = torch.linspace(0, math.pi, 91, dtype=torch.float64)
q1 = torch.tensor([1.5, 0.0], dtype=torch.float64).expand(91, 2)
k1 = 1.5 * torch.stack((angles.cos(), angles.sin()), dim=-1)
dots = (q1 * k1).sum(-1)
print("one entry e^{q.k}, |q| = |k| = 1.5, m = 64: relative RMS error (closed form)")
for index in (0, 45, 60, 75, 90):
    pos = relative_kernel_mse(q1[index], k1[index], 64, "positive").sqrt().item()
    trig = relative_kernel_mse(q1[index], k1[index], 64, "trigonometric").sqrt().item()
    print(f"  q.k = {dots[index].item():+5.2f}: positive {pos:7.3f}, trigonometric {trig:7.3f}")

fig, (ax, ax_var) = plt.subplots(1, 2, figsize=(11, 3.8))
styles = {"i.i.d.": "C0", "orthogonal": "C1", "trigonometric": "C2"}
for kind, color in styles.items():
    for column, marker, what in ((1, "o-", "smallest quarter of exp(QK^T)"), (2, "s--", "attention output")):
        ax.errorbar(feature_counts, [errors[kind, m][column][0] for m in feature_counts],
                    yerr=[errors[kind, m][column][1] for m in feature_counts], fmt=marker, color=color,
                    capsize=3, label=f"{what}, {kind}")
ax.plot(feature_counts, [errors["i.i.d.", 8][2][0] * (8 / m) ** 0.5 for m in feature_counts], "k:",
        label=r"$\propto 1/\sqrt{m}$")
ax.set(xscale="log", yscale="log", xlabel="number of random projections m", ylabel="relative error",
       title=f"FAVOR+ (d = {d}), mean $\\pm$ 2 s.e.")
ax.legend(fontsize=7)
for kind, color in (("positive", "C0"), ("trigonometric", "C2")):
    ax_var.semilogy(dots, relative_kernel_mse(q1, k1, 64, kind).sqrt(), color=color, label=kind)
ax_var.set(xlabel=r"$q\cdot k$ ($|q| = |k| = 1.5$)", ylabel=r"relative RMS error of $e^{q\cdot k}$, m = 64",
           title="small attention weights: trigonometric blows up", ylim=(1e-3, 1e2))
ax_var.legend(fontsize=8)
fig.tight_layout()
