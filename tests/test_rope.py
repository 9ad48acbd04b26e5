"""RoPE (https://kexue.fm/archives/8397): <R_m q, R_n k> = <q, R_{n-m} k> in 1-D and 2-D, R orthogonal."""
from __future__ import annotations

import pytest
import torch

from spaces_code.rope import apply_rope, apply_rope_2d, rope_matrix, rope_matrix_2d

TOL = dict(rtol=1e-10, atol=1e-10)  # float64


def test_apply_rope_equals_explicit_matrix(device):
    gen = torch.Generator(device=device).manual_seed(0)
    d = 10  # d/2 odd on purpose
    x = torch.randn(2, 3, 5, d, generator=gen, device=device, dtype=torch.float64)  # batch dims
    positions = torch.tensor([0, 1, 7, -3, 100000], device=device)
    rotated = apply_rope(x, positions)
    for i, m in enumerate(positions.tolist()):
        expected = x[..., i, :] @ rope_matrix(m, d, device=device).T
        torch.testing.assert_close(rotated[..., i, :], expected, **TOL)


@pytest.mark.parametrize("d", [2, 8, 64])
def test_rope_matrix_is_orthogonal_and_relative(device, d):
    for m, n in [(0, 0), (3, 11), (-5, 2), (1000, 4097)]:
        r_m, r_n = rope_matrix(m, d, device=device), rope_matrix(n, d, device=device)
        eye = torch.eye(d, dtype=torch.float64, device=device)
        torch.testing.assert_close(r_m.T @ r_m, eye, **TOL)
        # $\mathcal{R}_m^\top \mathcal{R}_n = \mathcal{R}_{n-m}$
        torch.testing.assert_close(r_m.T @ r_n, rope_matrix(n - m, d, device=device), rtol=1e-9, atol=1e-9)


def test_rope_score_depends_only_on_offset(device):
    gen = torch.Generator(device=device).manual_seed(1)
    d, n = 16, 40
    q = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    k = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    positions = torch.arange(n, device=device) * 37 - 500
    rq = apply_rope(q.expand(n, d), positions)  # (n, d): R_m q for every m
    rk = apply_rope(k.expand(n, d), positions)
    scores = rq @ rk.T  # scores[a, b] = <R_{m_a} q, R_{m_b} k>
    for a in range(0, n, 7):
        for b in range(0, n, 5):
            offset = int(positions[b] - positions[a])
            expected = q @ rope_matrix(offset, d, device=device) @ k  # <q, R_{n-m} k>
            torch.testing.assert_close(scores[a, b], expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(n), **TOL)  # rotation keeps the norm


def test_rope_2d_relative_and_orthogonal(device):
    gen = torch.Generator(device=device).manual_seed(2)
    d = 12
    q = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    k = torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    grid = torch.tensor([[0, 0], [1, 0], [0, 1], [3, -2], [-7, 5], [200, 31]], device=device)
    n = grid.shape[0]
    rq = apply_rope_2d(q.expand(n, d), grid)
    rk = apply_rope_2d(k.expand(n, d), grid)
    for a in range(n):
        r_a = rope_matrix_2d(tuple(grid[a].tolist()), d, device=device)
        torch.testing.assert_close(rq[a], r_a @ q, **TOL)
        torch.testing.assert_close(r_a.T @ r_a, torch.eye(d, dtype=torch.float64, device=device), **TOL)
        for b in range(n):
            offset = tuple((grid[b] - grid[a]).tolist())
            expected = q @ rope_matrix_2d(offset, d, device=device) @ k  # <q, R_{(x2-x1, y2-y1)} k>
            torch.testing.assert_close(rq[a] @ rk[b], expected, rtol=1e-9, atol=1e-9)


def test_rope_2d_differs_along_each_axis(device):
    """The 2-D code tells x from y: shifting along x only changes the first half of the dimensions."""
    x = torch.ones(2, 8, dtype=torch.float64, device=device)
    out = apply_rope_2d(x, torch.tensor([[0, 0], [3, 0]], device=device))
    assert not torch.allclose(out[0, :4], out[1, :4])
    torch.testing.assert_close(out[0, 4:], out[1, 4:], **TOL)


def test_float32_on_device_matches_float64_cpu(device):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 9, 32, generator=gen, dtype=torch.float64)
    positions = torch.arange(9) * 1000
    grid = torch.stack((torch.arange(9) % 3, torch.arange(9) // 3), dim=-1)
    got = apply_rope(x.float().to(device), positions.to(device)).cpu().double()
    torch.testing.assert_close(got, apply_rope(x, positions), rtol=1e-5, atol=1e-5)
    got = apply_rope_2d(x.float().to(device), grid.to(device)).cpu().double()
    torch.testing.assert_close(got, apply_rope_2d(x, grid), rtol=1e-5, atol=1e-5)


def test_bad_dimensions_raise():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.zeros(3, 5), torch.arange(3))
    with pytest.raises(ValueError, match="divisible by 4"):
        apply_rope_2d(torch.zeros(3, 6), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        apply_rope(torch.zeros(3, 4), torch.arange(4))
