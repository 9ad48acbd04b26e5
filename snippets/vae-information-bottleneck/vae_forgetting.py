"""The KL term as forgetting: VAEs on a 2-D ring of 8 clusters with weight beta on KL(p(z|x) || q(z))."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.vae_bottleneck import VAE, kl_diag_gaussians, kl_monte_carlo, mutual_information

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device

mu1, logvar1 = torch.tensor([0.5, -1.0, 2.0], device=device), torch.tensor([0.2, -0.7, 1.1], device=device)
mu2, logvar2 = torch.zeros(3, device=device), torch.tensor([0.0, 0.5, -0.3], device=device)
estimate, std_err = kl_monte_carlo(mu1, logvar1, mu2, logvar2, 100_000, gen)
print(f"KL of two diagonal Gaussians: closed form {kl_diag_gaussians(mu1, logvar1, mu2, logvar2).item():.4f}, "
      f"Monte Carlo {estimate.item():.4f} +- {std_err.item():.4f}\n")


def ring(n: int) -> torch.Tensor:
    angle = 2 * math.pi / 8 * torch.randint(0, 8, (n,), generator=gen).to(device)
    centres = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
    return centres + 0.2 * torch.randn(n, 2, generator=gen).to(device)


test = ring(1000)
betas = (0.01, 0.1, 0.5, 3.0)
fig, axes = plt.subplots(1, len(betas), figsize=(8, 2.4), sharex=True, sharey=True)
print(f"{'beta':>5} {'|x - x_hat|^2':>14} {'E KL (nats)':>12} {'I(x;z) (nats)':>14}")
for ax, beta in zip(axes, betas):
    torch.manual_seed(0)
    model = VAE(x_dim=2, z_dim=2, hidden=32, generator=gen).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(120):  # 120 steps: the same four regimes as 200 steps, in 60% of the time
        reconstruction, kl = model.losses(ring(256), gen)
        loss = (reconstruction + beta * kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mu, logvar = model.encode(test)
        x_hat = model.decoder(mu)
        _, kl = model.losses(test, gen)
        info = mutual_information(mu, logvar, n_samples=2, generator=gen)  # 2 z per point: 2 x 1000 terms
    print(f"{beta:>5g} {(x_hat - test).square().sum(-1).mean().item():14.3f} {kl.mean().item():12.2f} "
          f"{round(info.item(), 2) + 0.0:14.2f}")
    ax.scatter(*test[:300].cpu().T, s=2, color="lightgray")  # 300 of the 1,000 points: a lighter SVG
    ax.scatter(*x_hat[:300].cpu().T, s=2, color="tab:red")
    ax.set_title(rf"$\beta = {beta:g}$")
    ax.set_aspect("equal")
axes[0].set_ylabel("data (grey), decoded means (red)", fontsize=8)
fig.tight_layout()
