"""Loss and gradient along the gradient direction during training, with and without BN (Santurkar et al.)."""
import matplotlib.pyplot as plt
import torch

from spaces_code.batchnorm_smoothness import (MLP, MLPConfig, make_teacher_data, probe_along_gradient,
                                              top_hessian_eigenvalue, train_and_probe)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device
x, y = make_teacher_data(256, MLPConfig(), generator, device)  # offset 3, feature scales 0.1..10
step_sizes = torch.tensor([0.02, 0.05, 0.1, 0.2, 0.4], device=device)  # eta along -grad

records = {}
for batch_norm in (False, True):
    model = MLP(MLPConfig(batch_norm=batch_norm), generator, device)  # 6 hidden ReLU layers of 64
    records["with BN" if batch_norm else "without BN"] = train_and_probe(
        model, x, y, lr=0.05, steps=80, probe_every=5, step_sizes=step_sizes)

print(f"{'':<11} {'final loss':>10} {'median loss range':>18} {'median beta_eff':>16}")
for name, record in records.items():
    print(f"{name:<11} {record.train_loss[-1].item():10.3f} {record.loss_range.median().item():18.3g} "
          f"{record.effective_smoothness.median().item():16.3g}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
for name, record in records.items():
    steps = record.probe_steps.cpu()
    ax1.fill_between(steps, record.probe_losses.amin(-1).cpu(), record.probe_losses.amax(-1).cpu(),
                     alpha=0.4, label=name)
    ax2.plot(steps, record.effective_smoothness.cpu(), marker=".", label=name)
ax1.set_yscale("log")
ax1.set_xlabel("training step")
ax1.set_title(r"loss range of $L(\theta - \eta\nabla L)$, $\eta \in [0.02, 0.4]$", fontsize=10)
ax1.legend()
ax2.set_yscale("log")
ax2.set_xlabel("training step")
ax2.set_title(r"effective $\beta$-smoothness", fontsize=10)
ax2.legend()
fig.tight_layout()

# Ablation (the article's argument): which half of BN does the work? A smaller net (4 layers of 32, 10
# features, 3 classes), the same initial weights, the same inputs shifted by a common offset mu; measured at
# initialisation: sharpness |lambda_max| of the loss Hessian and beta_eff along the gradient.
small = dict(in_dim=10, width=32, depth=4, n_classes=3)
z, y = make_teacher_data(128, MLPConfig(**small), generator, device, offset=0.0)
offsets = (0.0, 3.0, 10.0)
print(f"\n{'normalisation':<16}" + "".join(f"{f'|lambda_max|, mu={m:g}':>20}" for m in offsets)
      + "".join(f"{f'beta_eff, mu={m:g}':>17}" for m in offsets))
for norm, label in (("none", "none"), ("center", "centring only"), ("scale", "scaling only"),
                    ("bn", "full BN (both)")):
    sharpness, beta = [], []
    for offset in offsets:
        model = MLP(MLPConfig(**small, normalization=norm), make_generator(1), device)
        sharpness.append(top_hessian_eigenvalue(model, z + offset, y, iters=20, generator=make_generator(2)).abs())
        beta.append(probe_along_gradient(model, z + offset, y, step_sizes).effective_smoothness)
    print(f"{label:<16}" + "".join(f"{s.item():20.3g}" for s in sharpness) + "".join(f"{b.item():17.3g}" for b in beta))
