"""Every even-order Taylor polynomial of exp stays positive; its only minimum is where f_n(x) = x^n/n!."""
import math

import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.taylor_softmax import critical_points, exp_taylor, taylor_softmax

device = pick_device()
make_generator(0)

print(f"{'n':>3} {'critical x':>11} {'f_n(x)':>11} {'x^n/n!':>11}")
for n in (2, 4, 6, 8, 10, 20, 30):
    x = critical_points(n)[0].item()
    value = exp_taylor(torch.tensor(x, dtype=torch.float64, device=device), n).item()
    print(f"{n:3d} {x:11.5f} {value:11.3e} {x ** n / math.factorial(n):11.3e}")

logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0], device=device)
print("logits        ", logits.tolist())
print("softmax       ", [round(p, 3) for p in torch.softmax(logits, -1).tolist()])
for n in (2, 4):
    print(f"taylor_softmax{n}", [round(p, 3) for p in taylor_softmax(logits, n).tolist()])

grid = torch.linspace(-7, 2, 500, dtype=torch.float64, device=device)
fig, ax = plt.subplots(figsize=(6, 3.5))
for n in (2, 4, 6, 8, 10):
    ax.plot(grid.cpu(), exp_taylor(grid, n).cpu(), label=f"$f_{{{n}}}$")
    x = critical_points(n)[0].item()
    ax.plot([x], [x ** n / math.factorial(n)], "k.")
ax.plot(grid.cpu(), grid.exp().cpu(), "k--", lw=1, label="$e^x$")
ax.axhline(0, color="gray", lw=0.5)
ax.set_ylim(-0.1, 1.5)
ax.set_xlabel("x")
ax.set_title("even-order Taylor polynomials of exp (dots: minima)")
ax.legend(ncol=3, fontsize=8)
fig.tight_layout()
