r"""Transformer升级之路：4、二维位置的旋转式位置编码 — https://kexue.fm/archives/8397

Rotary position embedding (RoPE), introduced in the series' part 2 and the paper RoFormer (Su et al.,
2021, arXiv:2104.09864), and its 2-D extension for image patches discussed in this article.

1-D: the pair of components $(x_{2i}, x_{2i+1})$ is rotated by the angle $m\theta_i$,

$$
\mathcal{R}_m = \mathrm{diag}\big(R(m\theta_0), \dots, R(m\theta_{d/2-1})\big),\quad
R(\phi) = \begin{pmatrix}\cos\phi & -\sin\phi\\ \sin\phi & \cos\phi\end{pmatrix},\quad
\theta_i = 10000^{-2i/d},
$$

so that $\langle\mathcal{R}_m q, \mathcal{R}_n k\rangle = q^\top\mathcal{R}_{n-m}k$
($\mathcal{R}_m^\top\mathcal{R}_n = \mathcal{R}_{n-m}$, each block being a rotation).

2-D: for a position $(x, y)$ the article uses a block-diagonal matrix built from two 1-D RoPEs,

$$
\mathcal{R}_{x,y} = \begin{pmatrix}\mathcal{R}_x & 0\\ 0 & \mathcal{R}_y\end{pmatrix},\qquad
\mathcal{R}_{x_1,y_1}^\top\mathcal{R}_{x_2,y_2} = \mathcal{R}_{x_2-x_1,\,y_2-y_1},
$$

i.e. the first half of the dimensions is rotated by $x$, the second half by $y$ (so $d$ must be
divisible by 4).

Why it works. Every such rotation is a matrix exponential $\mathcal{R}_{x,y} = \exp(xA + yB)$ of two
skew-symmetric generators (:func:`rope_generators_2d`: $A$ holds the blocks $\theta_i J$ on the first
half, $B$ on the second, $J = R(\pi/2)$). Since $\mathcal{R}_p^\top = \exp(-p\cdot G)$, relativity asks
$\exp(-p\cdot G)\exp(q\cdot G) = \exp((q-p)\cdot G)$, true when $AB = BA$ (exponentials of commuting
matrices multiply like numbers). When they do not commute, Baker–Campbell–Hausdorff gives

$$
\mathcal{R}_p^\top\mathcal{R}_q - \mathcal{R}_{q-p} = -\tfrac12\,(p_x q_y - p_y q_x)\,[A, B]
+ O(\|G\|^3),
$$

so the score $\langle\mathcal{R}_p q, \mathcal{R}_{p+\Delta} k\rangle$ depends on the absolute position
$p$: :func:`relativity_defect` measures it, :func:`random_skew_generators` supplies generic
non-commuting generators as the counterexample. RoPE's $A$ and $B$ act on disjoint coordinates, hence
commute: that is the whole reason the 2-D version is two 1-D versions side by side.
"""
from __future__ import annotations

import torch
from torch import Tensor

from spaces_code import randomness
from spaces_code.sinusoidal import sinusoidal_frequencies

# RoPE rotates by the Sinusoidal encoding's frequencies $\theta_i = 10000^{-2i/d}$: one definition.
rope_frequencies = sinusoidal_frequencies


def apply_rope(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    r"""Rotate ``x`` (..., n, d) by $\mathcal{R}_m$ with ``m = positions`` (n,) integers.

    ``positions`` may also carry leading batch dimensions that broadcast with ``x`` (..., n). Angles are
    computed in float64 so that large positions keep their accuracy, then cast to ``x.dtype``.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"apply_rope needs an even last dimension, got x.shape[-1]={d}")
    if positions.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"positions has length {positions.shape[-1]} but x has {x.shape[-2]} positions (dim -2)")
    theta = rope_frequencies(d, base, device=x.device)  # (d/2,)
    # $m\theta_i$
    angles = positions.to(device=x.device, dtype=torch.float64)[..., None] * theta  # (..., n, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., n, d/2) each
    # $(x_{2i}, x_{2i+1}) \mapsto (x_{2i}\cos m\theta_i - x_{2i+1}\sin m\theta_i,\;
    #   x_{2i}\sin m\theta_i + x_{2i+1}\cos m\theta_i)$
    rotated_even = x_even * cos - x_odd * sin
    rotated_odd = x_even * sin + x_odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)  # (..., n, d)


def apply_rope_2d(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    r"""2-D RoPE: ``x`` (..., n, d) with ``d % 4 == 0``, ``positions`` (n, 2) integer ``(x, y)`` pairs.

    The first ``d/2`` components are rotated by the 1-D RoPE of the first coordinate, the last ``d/2``
    by that of the second coordinate: $\mathcal{R}_{x,y} = \mathrm{diag}(\mathcal{R}_x, \mathcal{R}_y)$.
    """
    d = x.shape[-1]
    if d % 4:
        raise ValueError(f"apply_rope_2d needs a last dimension divisible by 4, got {d}")
    if positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (n, 2), got {tuple(positions.shape)}")
    half = d // 2
    # $\mathcal{R}_{x,y} = \mathrm{diag}(\mathcal{R}_x, \mathcal{R}_y)$
    first = apply_rope(x[..., :half], positions[..., 0], base)  # (..., n, d/2)
    second = apply_rope(x[..., half:], positions[..., 1], base)  # (..., n, d/2)
    return torch.cat((first, second), dim=-1)


def rope_matrix(position: float, d: int, base: float = 10000.0,
                device: torch.device | str | None = None) -> Tensor:
    r"""The explicit ``(d, d)`` float64 matrix $\mathcal{R}_m$, built block by block.

    Independent of :func:`apply_rope` (which never forms the matrix), so tests can compare the two.
    """
    phi = position * rope_frequencies(d, base, device=device)  # (d/2,)
    c, s = phi.cos(), phi.sin()
    # $R(\phi) = [[\cos\phi, -\sin\phi], [\sin\phi, \cos\phi]]$ for each frequency
    blocks = torch.stack((c, -s, s, c), dim=-1).reshape(-1, 2, 2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks.unbind(0))  # (d, d)


def rope_matrix_2d(position_xy: tuple[float, float], d: int, base: float = 10000.0,
                   device: torch.device | str | None = None) -> Tensor:
    r"""The explicit ``(d, d)`` float64 matrix $\mathcal{R}_{x,y} = \mathrm{diag}(\mathcal{R}_x, \mathcal{R}_y)$."""
    if d % 4:
        raise ValueError(f"2-D RoPE needs d divisible by 4, got d={d}")
    px, py = position_xy
    return torch.block_diag(rope_matrix(px, d // 2, base, device), rope_matrix(py, d // 2, base, device))


def rope_generators_2d(d: int, base: float = 10000.0,
                       device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    r"""Skew-symmetric generators $(A, B)$, float64 ``(d, d)`` each, with $\mathcal{R}_{x,y} = \exp(xA + yB)$.

    $A = \mathrm{diag}(\theta_0 J, \dots, \theta_{d/4-1} J, 0, \dots, 0)$ and $B$ the same on the
    second half, $J = \begin{pmatrix}0&-1\\1&0\end{pmatrix}$ (so $\exp(\phi J) = R(\phi)$).
    """
    if d % 4:
        raise ValueError(f"2-D RoPE needs d divisible by 4, got d={d}")
    theta = rope_frequencies(d // 2, base, device=device)  # (d/4,)
    j = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64, device=device)
    # $\theta_i J$ on each pair of one half
    half = torch.block_diag(*(theta[:, None, None] * j).unbind(0))  # (d/2, d/2)
    zero = torch.zeros_like(half)
    return torch.block_diag(half, zero), torch.block_diag(zero, half)


def random_skew_generators(d: int, generator: torch.Generator | None, scale: float = 1.0,
                           device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    r"""Two random skew-symmetric ``(d, d)`` float64 matrices $(M - M^\top)\cdot\text{scale}/\sqrt{2d}$
    with Gaussian $M$: generically $AB \ne BA$ (the counterexample to relativity)."""
    a, b = (randomness.randn(d, d, generator=generator, device=device, dtype=torch.float64) for _ in range(2))
    return tuple((m - m.T) * scale / (2 * d) ** 0.5 for m in (a, b))


def commutator(a: Tensor, b: Tensor) -> Tensor:
    r"""$[A, B] = AB - BA$."""
    return a @ b - b @ a


def rotation_from_generators(position_xy: tuple[float, float], a: Tensor, b: Tensor) -> Tensor:
    r"""$\mathcal{R}_{x,y} = \exp(xA + yB)$ by the matrix exponential (orthogonal when $A, B$ are
    skew-symmetric)."""
    x, y = position_xy
    # $\exp(xA + yB)$
    return torch.linalg.matrix_exp(x * a + y * b)


def relativity_defect(a: Tensor, b: Tensor, p: tuple[float, float], q: tuple[float, float]) -> float:
    r"""$\|\mathcal{R}_p^\top\mathcal{R}_q - \mathcal{R}_{q-p}\|_F$ for $\mathcal{R} = \exp(xA + yB)$: zero
    for every $p, q$ when $AB = BA$, about $\tfrac12|p_x q_y - p_y q_x|\,\|[A,B]\|_F$ for small generators
    otherwise."""
    r_p, r_q = rotation_from_generators(p, a, b), rotation_from_generators(q, a, b)
    offset = (q[0] - p[0], q[1] - p[1])
    # $\mathcal{R}_p^\top \mathcal{R}_q - \mathcal{R}_{q-p}$
    return float((r_p.T @ r_q - rotation_from_generators(offset, a, b)).norm())
