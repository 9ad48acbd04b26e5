"""<p_m, p_n> of the Sinusoidal encoding: a function of m - n only, decaying with distance."""
import matplotlib.pyplot as plt
import torch

from spaces_code.rope import rope_matrix
from spaces_code.runtime import pick_device
from spaces_code.sinusoidal import decay_integral, relative_inner_product, sinusoidal_position_encoding

device = pick_device()
d = 128
positions = torch.arange(512, device=device)
p = sinusoidal_position_encoding(positions, d)  # (512, d)
gram = p @ p.T  # <p_m, p_n>
offsets = positions[:, None] - positions[None, :]
print(f"d={d}, positions 0..511")
print(f"max |<p_m, p_n> - sum_i cos((m-n) theta_i)|  = "
      f"{(gram - relative_inner_product(offsets, d)).abs().max().item():.1e}")
spread = max((torch.diagonal(gram, k).max() - torch.diagonal(gram, k).min()).item() for k in range(512))
print(f"largest spread along a diagonal m-n = const  = {spread:.1e}")
shift = (p[100 + 7] - rope_matrix(-7, d, device=device) @ p[100]).abs().max().item()
print(f"max |p_(m+7) - R_(-7) p_m| (a rotation)      = {shift:.1e}")
for k in (0, 1, 10, 100, 500):
    label = f"<p_m, p_(m+{k})> / (d/2)"
    print(f"  {label:<24} = {gram[0, k].item() / (d / 2):7.4f}")

distance = torch.arange(0, 1001, device=device)
fig, (ax_gram, ax_decay) = plt.subplots(1, 2, figsize=(9, 3.5), gridspec_kw={"width_ratios": [1, 1.6]})
image = ax_gram.imshow(gram[:128, :128].cpu(), cmap="RdBu_r")
ax_gram.set_title(r"$\langle p_m, p_n\rangle$, $m, n < 128$")
ax_gram.set_xlabel("n")
ax_gram.set_ylabel("m")
fig.colorbar(image, ax=ax_gram, shrink=0.8)
ax_decay.plot(distance.cpu(), (relative_inner_product(distance, d) / (d / 2)).cpu(), lw=0.8,
              label=r"$\frac{2}{d}\sum_i \cos((m-n)\theta_i)$, d = 128")
ax_decay.plot(distance.cpu(), decay_integral(distance).cpu(), "k--", lw=1.2,
              label=r"$\int_0^1 \cos((m-n)\,10000^{-t})\,dt$")
ax_decay.set_xlabel("relative distance m - n")
ax_decay.set_title("long-range decay")
ax_decay.legend(fontsize=8)
fig.tight_layout()
