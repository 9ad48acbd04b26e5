"""The exact batch W1 as a generator's loss: biased by ~1/sqrt(B), and minimised by a wrong generator."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.wgan import expected_batch_w1, fit_location_scale, wasserstein1_1d

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device


def sample_p(shape):  # "real": two bumps at -2 and +2 (as in the first snippet)
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
    return (2 * sign + 0.5 * torch.randn(shape, generator=gen)).to(device)


def sample_q(shape):  # "generated": one bump in the middle
    return (0.5 + torch.randn(shape, generator=gen)).to(device)


def normal(shape, generator):  # real data for the generator fits: N(0, 1), drawn on CPU
    return torch.randn(shape, generator=generator, dtype=torch.float64)


# 1. The batch distance is biased: E W1(p_B, p'_B) > 0 = W1(p, p), and E W1(p_B, q_B) > W1(p, q).
w1_pq = wasserstein1_1d(sample_p(200_000), sample_q(200_000)).item()
sizes = [4, 16, 64, 256, 1024]
same, cross = [], []
for b in sizes:
    k = max(20_000 // b, 50)  # batch pairs
    same.append(expected_batch_w1(sample_p((k, b)), sample_p((k, b))).item())
    cross.append(expected_batch_w1(sample_p((k, b)), sample_q((k, b))).item())
print(f"W1(p, q) from 200000 samples each: {w1_pq:.3f}")
print(f"{'B':>5} {'E W1(p_B, p_B)':>15} {'x sqrt(B)':>10} {'E W1(p_B, q_B)':>15}")
for b, s, c in zip(sizes, same, cross):
    print(f"{b:5d} {s:15.3f} {s * math.sqrt(b):10.2f} {c:15.3f}")

# 2. Minimising the exact batch W1 over g(z) = a z + b, real data N(0, 1), started AT the truth a = 1, b = 0.
print(f"\n{'B':>3} {'a after 300 steps':>18} {'true W1 of g':>13} {'E W1(data_B, g_B)':>18} "
      f"{'E W1(data_B, data_B)':>21}")
fits = {}
for b in (4, 16, 64):
    fits[b] = fit = fit_location_scale(normal, batch=b, steps=300, batches_per_step=128, generator=gen)
    a, shift = fit.scale[-1].item(), fit.shift[-1].item()
    real, other, z = (normal((4000, b), gen) for _ in range(3))
    true_w1 = wasserstein1_1d(normal(200_000, gen), a * normal(200_000, gen) + shift).item()
    print(f"{b:3d} {a:18.3f} {true_w1:13.3f} {expected_batch_w1(real, a * z + shift).item():18.3f} "
          f"{expected_batch_w1(real, other).item():21.3f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.loglog(sizes, same, "o-", label=r"$\mathbb{E}\,W_1(\hat p_B, \hat p'_B)$ (truth: 0)")
ax1.loglog(sizes, [c - w1_pq for c in cross], "s-", label=r"$\mathbb{E}\,W_1(\hat p_B, \hat q_B) - W_1(p, q)$")
ax1.loglog(sizes, [same[0] * math.sqrt(sizes[0] / b) for b in sizes], "k:", label=r"$\propto 1/\sqrt{B}$")
ax1.set_xlabel("batch size B")
ax1.set_title("bias of the exact batch distance", fontsize=10)
ax1.legend(fontsize=7)
for b, fit in fits.items():
    ax2.plot(fit.scale.cpu(), label=f"B = {b}")
ax2.axhline(1.0, color="k", lw=0.8, ls="--")
ax2.set_xlabel("step of Adam on the exact batch $W_1$")
ax2.set_ylabel("scale $a$ of $g(z) = az + b$")
ax2.set_title("started at the data (a = 1), it leaves it", fontsize=10)
ax2.legend(fontsize=7)
fig.tight_layout()
