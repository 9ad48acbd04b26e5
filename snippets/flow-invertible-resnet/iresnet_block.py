"""A spectral-normalised residual block: Lip(g) < 1, fixed-point inverse, power-series log-det."""
import matplotlib.pyplot as plt
import torch

from spaces_code.iresnet import (InvertibleResidualBlock, batch_jacobian, exact_log_det,
                                 series_log_det_from_jacobian)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device

block = InvertibleResidualBlock(dim=2, hidden=16, n_layers=2, coeff=0.9, generator=gen).to(device, torch.float64)
with torch.no_grad():
    for name, p in block.named_parameters():
        if name.endswith("weight"):
            torch.nn.init.orthogonal_(p, gain=3.0)  # raw spectral norm 3: normalisation brings it to 0.9
lip = block.lipschitz_bound().item()
print(f"Lip(g) <= product of spectral norms = {lip:.3f}")

x = 2 * torch.randn(512, 2, generator=gen, dtype=torch.float64).to(device)
with torch.no_grad():
    y = block(x)
    iterates = block.inverse_iterates(y, n_iter=60)
errors = (iterates - x).norm(dim=-1).max(dim=-1).values.cpu()  # worst sample, per iteration
print("\nfixed-point inverse x_{n+1} = y - g(x_n)")
print(f"{'n':>4} {'max |x_n - x|':>14} {'Lip^n |x_0 - x|':>16}")
for n in (1, 5, 10, 20, 40, 60):
    print(f"{n:>4} {errors[n].item():14.2e} {lip ** n * errors[0].item():16.2e}")

x = x[:64]
exact = exact_log_det(block, x)
jac = batch_jacobian(block.g, x)
print(f"\nlog|det(I + J_g)| on 64 points: mean {exact.mean().item():.3f}, "
      f"range [{exact.min().item():.3f}, {exact.max().item():.3f}]")
term_counts = (1, 2, 3, 5, 8, 12, 20)
curves = {"exact traces": [(series_log_det_from_jacobian(jac, n) - exact).abs().mean().item()
                           for n in term_counts]}
for probes in (1, 32, 1024):
    curves[f"{probes} probe(s)"] = [
        (block.log_det(x, n_terms=n, n_probes=probes, generator=gen) - exact).abs().mean().item()
        for n in term_counts]
print("mean |error| of the truncated series")
print(f"{'terms':>5} " + " ".join(f"{name:>13}" for name in curves))
for i, n in enumerate(term_counts):
    print(f"{n:>5} " + " ".join(f"{errs[i]:13.1e}" for errs in curves.values()))

fig, axes = plt.subplots(1, 2, figsize=(7, 3))
n = torch.arange(len(errors))
axes[0].semilogy(n, errors, label=r"max $\Vert x_n - x\Vert$")
axes[0].semilogy(n, lip ** n * errors[0], "--", label=r"$\mathrm{Lip}(g)^n \Vert x_0 - x\Vert$")
axes[0].set_xlabel("iteration n")
axes[0].set_title("fixed-point inverse")
axes[0].legend(fontsize=8)
for name, errs in curves.items():
    axes[1].semilogy(term_counts, errs, "o-", label=name)
axes[1].set_xlabel("power-series terms")
axes[1].set_ylabel("mean |error|")
axes[1].set_title("log-det: series + Hutchinson")
axes[1].legend(fontsize=8)
fig.tight_layout()
