"""Wood's vMF sampler: E<mu, x> = A_d(kappa), and the KL to the uniform prior does not depend on mu."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.vmf import (kl_vmf_uniform, log_sphere_area, mean_resultant_length, sample_vmf,
                             vmf_log_prob, vmf_w_log_density)

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device
n = 5000

print(f"{'d':>4} {'kappa':>6} {'A_d(kappa)':>11} {'mean <mu,x>':>12} {'KL(vMF||U)':>11}")
for dim in (3, 16, 128):
    mu = torch.nn.functional.normalize(torch.randn(dim, generator=gen).to(device), dim=0)
    for kappa in (1.0, 10.0, 100.0):
        x = sample_vmf(mu, kappa, n, gen)
        mean_w = (x @ mu).mean().item()
        print(f"{dim:>4} {kappa:>6g} {mean_resultant_length(dim, kappa).item():11.4f} {mean_w:12.4f} "
              f"{kl_vmf_uniform(dim, kappa).item():11.4f}")

dim, kappa = 16, 10.0
estimates = []
for _ in range(3):
    mu = torch.nn.functional.normalize(torch.randn(dim, generator=gen).to(device), dim=0)
    x = sample_vmf(mu, kappa, 20000, gen)
    estimates.append((vmf_log_prob(x, mu, kappa) + log_sphere_area(dim)).mean().item())
print(f"\nd={dim}, kappa={kappa:g}: Monte Carlo KL for three random mu = "
      + ", ".join(f"{e:.3f}" for e in estimates)
      + f"; closed form = {kl_vmf_uniform(dim, kappa).item():.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
mu = torch.zeros(dim, device=device)
mu[0] = 1
w_grid = torch.linspace(-0.999, 0.999, 400)
for kappa, color in ((2.0, "tab:blue"), (20.0, "tab:orange"), (80.0, "tab:green")):
    w = sample_vmf(mu, kappa, 20000, gen)[:, 0].cpu()
    ax.hist(w.numpy(), bins=80, range=(-1, 1), density=True, alpha=0.35, color=color)
    density = torch.exp(vmf_w_log_density(dim, kappa, w_grid))
    ax.plot(w_grid.numpy(), density.numpy(), color=color, label=rf"$\kappa={kappa:g}$")
ax.set_xlabel(r"$w = \langle \mu, x\rangle$")
ax.set_ylabel("density")
ax.set_title(rf"vMF samples on $S^{{{dim - 1}}}$: histogram vs $p(w)\propto e^{{\kappa w}}(1-w^2)^{{(d-3)/2}}$",
             fontsize=9)
ax.legend()
fig.tight_layout()
