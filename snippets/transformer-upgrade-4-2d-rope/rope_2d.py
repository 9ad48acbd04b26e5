"""2-D RoPE on a grid of image patches: the score depends only on the 2-D offset."""
import matplotlib.pyplot as plt
import torch

from spaces_code.rope import apply_rope, apply_rope_2d, rope_matrix, rope_matrix_2d
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # CPU generator: the same q, k whichever device runs
side, d = 9, 32
ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
grid = torch.stack((xs.flatten(), ys.flatten()), dim=-1).to(device)  # (81, 2): (x, y) of each patch
flat = torch.arange(side * side, device=device)  # 1-D index of the same patches, row by row
n = grid.shape[0]

# the identity <R_m q, R_n k> = <q, R_{n-m} k>, checked on every pair of positions
q = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
k = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
scores_1d = apply_rope(q.expand(n, d), flat) @ apply_rope(k.expand(n, d), flat).T
scores_2d = apply_rope_2d(q.expand(n, d), grid) @ apply_rope_2d(k.expand(n, d), grid).T


def expected_scores(offsets, matrix_for):
    """<q, R_offset k> for every pair, one explicit matrix per distinct offset."""
    distinct, index = torch.unique(offsets.reshape(n * n, -1), dim=0, return_inverse=True)
    table = torch.stack([matrix_for(offset) @ k for offset in distinct.tolist()])  # (distinct, d)
    return (table[index] @ q).view(n, n)


expected_1d = expected_scores(flat[None, :] - flat[:, None], lambda o: rope_matrix(o[0], d, device=device))
expected_2d = expected_scores(grid[None, :, :] - grid[:, None, :],  # (x_b - x_a, y_b - y_a)
                              lambda o: rope_matrix_2d(tuple(o), d, device=device))
err_1d = (scores_1d - expected_1d).abs().max().item()
err_2d = (scores_2d - expected_2d).abs().max().item()

r = rope_matrix_2d((3, -2), d, device=device)
print(f"1-D  max |<R_m q, R_n k> - <q, R_(n-m) k>|               = {err_1d:.0e}")
print(f"2-D  max |<R_(x1,y1) q, R_(x2,y2) k> - <q, R_(dx,dy) k>|  = {err_2d:.0e}")
print(f"2-D  max |R^T R - I| for R = R_(3,-2)                    = "
      f"{(r.T @ r - torch.eye(d, dtype=r.dtype, device=device)).abs().max().item():.0e}")

# score between the centre patch and every patch, with q = k = (1, ..., 1)
ones = torch.ones(n, d, device=device)
centre = (side // 2) * side + side // 2
maps = {
    "1-D RoPE on the flattened index": apply_rope(ones, flat) @ apply_rope(ones, flat)[centre],
    "2-D RoPE on (x, y)": apply_rope_2d(ones, grid) @ apply_rope_2d(ones, grid)[centre],
}
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, (title, score) in zip(axes, maps.items()):
    image = ax.imshow(score.view(side, side).cpu(), cmap="viridis")
    ax.plot(side // 2, side // 2, "r+", markersize=12)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x")
    fig.colorbar(image, ax=ax, shrink=0.8)
axes[0].set_ylabel("y")
fig.suptitle("score between the centre patch (+) and every patch, q = k = 1")
fig.tight_layout()
