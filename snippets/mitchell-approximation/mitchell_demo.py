"""Mitchell's multiplication by one integer addition on float32 bits: a few products and the error map."""
import matplotlib.pyplot as plt
import torch

from spaces_code.mitchell import mitchell_multiply
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # CPU generator: the same numbers whichever device runs

a = torch.tensor([3.0, 1.5, 7.0, 123.456, 0.1], device=device)
b = torch.tensor([5.0, 1.5, 9.0, 0.789, 0.3], device=device)
approx = mitchell_multiply(a, b)
print(f"{'a':>8} {'b':>8} {'a*b':>10} {'Mitchell':>10} {'rel. err':>9}")
for x, y, p in zip(a.tolist(), b.tolist(), approx.tolist()):
    print(f"{x:8.3f} {y:8.3f} {x * y:10.4f} {p:10.4f} {1 - p / (x * y):9.5f}")

# one million random pairs spread over 40 binades
x = torch.exp2(torch.rand(1_000_000, generator=generator) * 40 - 20).to(device)
y = torch.exp2(torch.rand(1_000_000, generator=generator) * 40 - 20).to(device)
err = 1 - mitchell_multiply(x, y).double() / (x.double() * y.double())
print(f"1e6 random pairs: min error {err.min().item():.6f}, max error {err.max().item():.6f} "
      f"(1/9 = {1 / 9:.6f})")

# error over the two mantissas: x = 1 + m_x, y = 1 + m_y
m = torch.linspace(0, 1, 257, device=device)[:-1]
grid = mitchell_multiply((1 + m)[:, None], (1 + m)[None, :])
err_map = 1 - grid.double() / ((1 + m.double())[:, None] * (1 + m.double())[None, :])
fig, ax = plt.subplots(figsize=(5, 4))
image = ax.imshow(err_map.cpu(), origin="lower", extent=(0, 1, 0, 1), cmap="magma")
ax.plot([0.5], [0.5], "c+", markersize=12)
ax.set_xlabel("mantissa $m_y$")
ax.set_ylabel("mantissa $m_x$")
ax.set_title("Mitchell relative error (max 1/9 at 1.5 x 1.5)")
fig.colorbar(image, ax=ax)
fig.tight_layout()
