"""A tanh MLP trained by gradient descent vs. its kernel-machine form f_0(x) - lr sum_t sum_i l'_i K_t(x, x_i)."""
import matplotlib.pyplot as plt
import torch

from spaces_code.path_kernel import MLPConfig, init_params, train_with_path_kernel
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device
params = init_params(MLPConfig(in_dim=1, hidden=32), generator, device)
x_train = torch.linspace(-3, 3, 12, dtype=torch.float64, device=device)[:, None]
y_train = torch.sin(x_train[:, 0])
x_query = torch.linspace(-4, 4, 41, dtype=torch.float64, device=device)[:, None]

run = train_with_path_kernel(params, x_train, y_train, x_query, lr=0.08, steps=300)
gap = (run.trained - run.kernel_machine).abs().max().item()
moved = (run.trained - run.initial).abs().max().item()
print(f"train loss {run.train_loss[0].item():.4f} -> {run.train_loss[-1].item():.4f} (300 steps, lr 0.08)")
print(f"max |f_T(x) - f_0(x)|          = {moved:.4f}")
print(f"max |f_T(x) - kernel machine|  = {gap:.2e}  ({gap / moved:.2%} of the change)")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
xq = x_query[:, 0].cpu()
ax1.plot(xq, run.initial.cpu(), color="gray", lw=1, label=r"$f(x;\theta_0)$")
ax1.plot(xq, run.trained.cpu(), lw=2, label=r"trained $f(x;\theta_T)$")
ax1.plot(xq, run.kernel_machine.cpu(), "k.", label="kernel machine form")
ax1.plot(x_train[:, 0].cpu(), y_train.cpu(), "rx", label="training data")
ax1.set_xlabel("x")
ax1.set_title("GD-trained MLP = kernel machine")
ax1.legend(fontsize=7)
for i in (2, 6, 9):
    ax2.plot(xq, run.path_kernel[:, i].cpu(), label=f"$x_i$ = {x_train[i, 0].item():.2f}")
ax2.set_xlabel("x")
ax2.set_title(r"path kernel $K^p(x, x_i)$")
ax2.legend(fontsize=7)
fig.tight_layout()
