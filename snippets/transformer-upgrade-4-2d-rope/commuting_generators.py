"""Why 2-D RoPE is relative: R(x, y) = exp(xA + yB) with AB = BA; non-commuting generators break it."""
import matplotlib.pyplot as plt
import torch

from spaces_code.rope import (commutator, random_skew_generators, relativity_defect, rope_generators_2d,
                              rope_matrix_2d, rotation_from_generators)
from spaces_code.runtime import make_generator

generator = make_generator(0)  # CPU generator: the same matrices on every device (all float64, CPU)
d = 8
rope_a, rope_b = rope_generators_2d(d, base=10.0)  # base 10: angles large enough to see on a small grid
skew_a, skew_b = random_skew_generators(d, generator)  # generic skew-symmetric pair: AB != BA
print(f"d = {d}")
print(f"2-D RoPE: max |exp(3A - 2B) - R_(3,-2)|      = "
      f"{(rotation_from_generators((3, -2), rope_a, rope_b) - rope_matrix_2d((3, -2), d, 10.0)).abs().max():.1e}")
print(f"2-D RoPE:        ||[A, B]||_F                = {commutator(rope_a, rope_b).norm():.1e}")
print(f"random skew pair: ||[A, B]||_F               = {commutator(skew_a, skew_b).norm():.2f}\n")
print(f"{'p -> q':<22}{'RoPE defect':>12}{'random defect':>15}{'random, generators x 0.01':>27}")
for p, q in [((0, 0), (2, 1)), ((1, 1), (3, 3)), ((1, 2), (3, 1)), ((-2, 3), (1, -1)), ((3, 3), (5, 4))]:
    # the last column: defect / (1/2 |p x q| s^2 ||[A, B]||) at s = 0.01, Baker-Campbell-Hausdorff's ratio
    cross = abs(p[0] * q[1] - p[1] * q[0])
    small = relativity_defect(0.01 * skew_a, 0.01 * skew_b, p, q)
    bch = f"defect/BCH = {small / (0.5 * cross * 0.01**2 * commutator(skew_a, skew_b).norm()):.4f}" \
        if cross else "p x q = 0: no defect"
    print(f"{str(p) + ' -> ' + str(q):<22}{relativity_defect(rope_a, rope_b, p, q):>12.1e}"
          f"{relativity_defect(skew_a, skew_b, p, q):>15.3f}{bch:>27}")

# the score <R_p q, R_(p + (2, 1)) k> as the absolute position p moves over a grid
q_vec, k_vec = torch.nn.functional.normalize(torch.randn(2, d, generator=generator, dtype=torch.float64), dim=-1)
offset, side = (2, 1), 9
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
for ax, (title, (a, b)) in zip(axes[:2], {"2-D RoPE (AB = BA)": (rope_a, rope_b),
                                          "random skew A, B (AB != BA)": (skew_a, skew_b)}.items()):
    scores = torch.tensor([[float(rotation_from_generators((x, y), a, b) @ q_vec
                                  @ rotation_from_generators((x + offset[0], y + offset[1]), a, b) @ k_vec)
                            for x in range(side)] for y in range(side)])
    image = ax.imshow(scores, cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
    ax.set_title(f"{title}\nspread {scores.max() - scores.min():.2f}", fontsize=9)
    ax.set_xlabel("x of p")
axes[0].set_ylabel("y of p")
fig.colorbar(image, ax=axes[:2], shrink=0.8, label="<R_p q, R_(p+(2,1)) k>")
scales = torch.logspace(-3, 0, 13, dtype=torch.float64)
p, q = (1, 2), (3, 1)
defects = [relativity_defect(s * skew_a, s * skew_b, p, q) for s in scales]
prediction = 0.5 * abs(p[0] * q[1] - p[1] * q[0]) * scales**2 * commutator(skew_a, skew_b).norm()
axes[2].loglog(scales, defects, "o", label=r"$\|R_p^\top R_q - R_{q-p}\|$, generators $\times s$")
axes[2].loglog(scales, prediction, "k--", label=r"$\frac{1}{2}|p\times q|\,s^2\|[A,B]\|$ (BCH)")
axes[2].set(xlabel="scale s of the generators", title="AB != BA: defect grows as s^2")
axes[2].legend(fontsize=7)
