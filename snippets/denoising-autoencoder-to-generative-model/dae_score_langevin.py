"""A noise-conditional DAE on a 2-D Gaussian mixture: its score (r(x)-x)/sigma^2 vs the true score,
then annealed Langevin sampling with the learned score."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.denoising_score import (
    Denoiser, GaussianMixture, annealed_langevin, geometric_sigmas, optimal_denoiser, train_denoiser,
)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device

angles = torch.arange(4, device=device) * math.pi / 2
mixture = GaussianMixture(means=2 * torch.stack([angles.cos(), angles.sin()], dim=-1),
                          stds=torch.full((4,), 0.3, device=device),
                          weights=torch.tensor([0.4, 0.3, 0.2, 0.1], device=device))
sigmas = geometric_sigmas(2.0, 0.05, levels=8, device=device)

model = Denoiser(generator=generator, device=device)
history = train_denoiser(model, lambda n: mixture.sample(n, generator), sigmas, generator=generator)
print(f"DAE loss: first 50 steps {sum(history[:50]) / 50:.3f}, last 50 steps {sum(history[-50:]) / 50:.3f}")

print(f"{'sigma':>6}{'cos(learned, true score)':>26}{'relative error':>16}{'|r_DAE - r*| / sigma':>22}")
for sigma in (0.05, 0.2, 1.0):
    x = mixture.sample(2000, generator)
    noisy = x + sigma * torch.randn(x.shape, generator=generator).to(device)
    with torch.no_grad():
        learned = model.score(noisy, sigma)
        denoised = model(noisy, torch.full((2000,), sigma, device=device))
    true = mixture.score(noisy, noise_std=sigma)
    cos = torch.nn.functional.cosine_similarity(learned, true, dim=-1).mean()
    rel = (learned - true).norm(dim=-1).pow(2).mean().sqrt() / true.norm(dim=-1).pow(2).mean().sqrt()
    gap = (denoised - optimal_denoiser(mixture, noisy, sigma)).norm(dim=-1).mean() / sigma
    print(f"{sigma:>6}{float(cos):>26.3f}{float(rel):>16.3f}{float(gap):>22.3f}")

with torch.no_grad():
    samples = annealed_langevin(model.score, 3 * torch.randn(2000, 2, generator=generator).to(device), sigmas,
                                steps_per_level=30, generator=generator)
nearest = ((samples[:, None, :] - mixture.means) ** 2).sum(-1).argmin(-1)
share = torch.bincount(nearest, minlength=4).float() / len(samples)
print("Langevin samples per component:", " ".join(f"{v:.2f}" for v in share.tolist()),
      "(true weights 0.40 0.30 0.20 0.10)")

fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.5))
grid = torch.linspace(-3, 3, 13, device=device)
points = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), dim=-1).reshape(-1, 2)
with torch.no_grad():
    learned = model.score(points, 0.2)
true = mixture.score(points, noise_std=0.2)
scale = lambda v: v / (1 + v.norm(dim=-1, keepdim=True))  # compress long arrows far from the data
for field, colour, label in ((true, "k", "true"), (learned, "tab:red", "DAE")):
    f = scale(field).cpu()
    left.quiver(points[:, 0].cpu(), points[:, 1].cpu(), f[:, 0], f[:, 1], color=colour, alpha=0.7, label=label)
left.set_title(r"score at $\sigma=0.2$: true vs $(r(x)-x)/\sigma^2$", fontsize=9)
left.legend(fontsize=8, loc="upper right")
fine = torch.linspace(-3.5, 3.5, 120, device=device)
mesh = torch.stack(torch.meshgrid(fine, fine, indexing="xy"), dim=-1)
density = mixture.log_prob(mesh).exp().cpu()
right.contour(fine.cpu(), fine.cpu(), density, levels=6, colors="k", linewidths=0.6)
right.scatter(samples[:800, 0].cpu(), samples[:800, 1].cpu(), s=2, color="tab:red", alpha=0.4)  # 800 of 2,000: lighter SVG
right.set_title("annealed Langevin samples (learned score)", fontsize=9)
for ax in (left, right):
    ax.set_aspect("equal")
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
fig.tight_layout()
