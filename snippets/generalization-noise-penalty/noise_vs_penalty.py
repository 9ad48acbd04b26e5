"""Gaussian input noise vs. its second-order expansion l(x) + sigma^2/2 tr H, on a small random tanh MLP."""
import matplotlib.pyplot as plt
import torch

from spaces_code.noise_penalty import (fit_mlp, hessian_trace, mlp_function, noise_remainder, noisy_loss,
                                       random_mlp_weights, squared_loss_noise_terms)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device
f = mlp_function(random_mlp_weights([8, 32, 32, 1], generator, device=device))
x = torch.randn(8, generator=generator, dtype=torch.float64).to(device)
y = torch.tensor(0.3, dtype=torch.float64, device=device)


def loss(z):
    return (f(z) - y) ** 2


trace = hessian_trace(loss, x)
print(f"l(x) = {loss(x).item():.4f},  tr H = {trace.item():.4f}")
print(f"{'sigma':>6} {'MC E[l(x+e)]-l(x)':>20} {'sigma^2/2 tr H':>15} {'ratio':>6}")
sigmas = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
excess, stderr = [], []
for sigma in sigmas:
    mc = noisy_loss(loss, x, sigma, n_samples=20_000, generator=generator)
    excess.append((mc.mean - loss(x)).item())
    stderr.append(mc.stderr.item())
    predicted = 0.5 * sigma ** 2 * trace.item()
    print(f"{sigma:6.2f} {excess[-1]:12.3e} ± {stderr[-1]:.0e} {predicted:15.3e} {excess[-1] / predicted:6.3f}")

terms = squared_loss_noise_terms(f, x, y, 0.1)
print(f"sigma=0.1 split: gradient penalty {terms.gradient_penalty.item():.3e}, "
      f"curvature term {terms.curvature_term.item():.3e}")

# The rest beyond second order is O(sigma^4), of whichever sign: estimated on the same u for every sigma.
for sigma in (0.0125, 0.025, 0.05):
    rest = noise_remainder(loss, x, sigma, 2048, make_generator(1))
    print(f"sigma={sigma:<6} rest r(sigma) = {rest.mean.item():+.3e}   "
          f"r / sigma^4 = {rest.mean.item() / sigma ** 4:+.3f}")

# At a fit the curvature term carries the residual f - y and vanishes: noise IS a gradient penalty there.
x_fit = torch.randn(16, 2, generator=generator, dtype=torch.float64).to(device)
y_fit = torch.sin(2 * x_fit[:, 0]) * torch.cos(x_fit[:, 1])
initial = random_mlp_weights([2, 16, 16, 1], generator, device=device)
print(f"\n{'16 training points, sigma = 0.1':<32} {'mean (f-y)^2':>12} {'grad penalty':>13} {'|curvature|':>12}")
for name, weights in (("random network", initial), ("after 600 Adam steps", fit_mlp(initial, x_fit, y_fit, 600, 2e-2))):
    f_net = mlp_function(weights)
    split = [squared_loss_noise_terms(f_net, xi, yi, 0.1) for xi, yi in zip(x_fit, y_fit)]
    print(f"{name:<32} {sum(t.loss.item() for t in split) / 16:12.2e} "
          f"{sum(t.gradient_penalty.item() for t in split) / 16:13.2e} "
          f"{sum(t.curvature_term.abs().item() for t in split) / 16:12.2e}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(sigmas, excess, yerr=[2 * s for s in stderr], fmt="o", label="Monte Carlo (±2 s.e.)")
grid = torch.logspace(-2, 0, 50)
ax.plot(grid, 0.5 * grid ** 2 * trace.item(), label=r"$\frac{1}{2}\sigma^2\,\mathrm{tr}\,\nabla^2 l(x)$")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"noise scale $\sigma$")
ax.set_ylabel(r"$\mathbb{E}[l(x+\varepsilon)] - l(x)$")
ax.set_title("input noise = curvature penalty for small noise")
ax.legend()
fig.tight_layout()
