"""RoPE (https://kexue.fm/archives/8397): <R_m q, R_n k> = <q, R_{n-m} k> in 1-D and 2-D, R orthogonal;
2-D RoPE is exp(xA + yB) with commuting generators, and non-commuting ones break relativity."""
from __future__ import annotations

import pytest
import torch

from spaces_code.rope import (apply_rope, apply_rope_2d, commutator, random_skew_generators, relativity_defect,
                              rope_generators_2d, rope_matrix, rope_matrix_2d, rotation_from_generators)

TOL = dict(rtol=1e-10, atol=1e-10)  # float64


def test_apply_rope_equals_explicit_matrix(device, generator):
    d = 10  # d/2 odd on purpose
    x = torch.randn(2, 3, 5, d, generator=generator, dtype=torch.float64).to(device)  # batch dims
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


def test_rope_score_depends_only_on_offset(device, generator):
    d, n = 16, 40
    q = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
    k = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
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


def test_rope_2d_relative_and_orthogonal(device, generator):
    d = 12
    q = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
    k = torch.randn(d, generator=generator, dtype=torch.float64).to(device)
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


def test_float32_on_device_matches_float64_cpu(device, generator):
    x = torch.randn(4, 9, 32, generator=generator, dtype=torch.float64)
    positions = torch.arange(9) * 1000
    grid = torch.stack((torch.arange(9) % 3, torch.arange(9) // 3), dim=-1)
    # float32 rounding of x (6e-8 relative) and of cos/sin (angles are float64): |error| <= ~4e-7 |x|
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


PAIRS = [((0, 0), (1, 0)), ((1, 2), (3, 1)), ((-4, 5), (2, -3)), ((7, 7), (0, 9))]


def test_rope_2d_is_the_exponential_of_commuting_generators(device):
    d = 16
    a, b = rope_generators_2d(d, device=device)
    torch.testing.assert_close(a.T, -a, rtol=0, atol=0)  # skew-symmetric
    assert torch.equal(commutator(a, b), torch.zeros_like(a))  # disjoint blocks: exactly zero
    for position in [(0, 0), (3, -2), (-7, 5), (40, 11)]:
        # $\mathcal{R}_{x,y} = \exp(xA + yB)$
        torch.testing.assert_close(rotation_from_generators(position, a, b),
                                   rope_matrix_2d(position, d, device=device), rtol=1e-10, atol=1e-10)
    for p, q in PAIRS:
        assert relativity_defect(a, b, p, q) < 1e-10  # float64 matrix_exp: ~1e-14 seen


def test_commuting_generators_keep_relativity_in_any_basis(generator):
    """Conjugating RoPE's generators by a random rotation keeps them commuting: relativity still holds."""
    d = 8
    a, b = rope_generators_2d(d, base=3.0)  # large angles, not only small ones
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    a, b = basis @ a @ basis.T, basis @ b @ basis.T
    assert commutator(a, b).abs().max() < 1e-12
    for p, q in PAIRS:
        assert relativity_defect(a, b, p, q) < 1e-10


def test_non_commuting_generators_break_relativity_as_bch_predicts(generator):
    """R_p^T R_q - R_{q-p} = -1/2 (p x q) [A, B] + O(|G|^3): the defect divided by the prediction tends
    to 1 as the generators shrink; at full size the score depends on the absolute position.

    Sweep of 200 seeds (d = 8): |ratio - 1| at eps = 0.01 max 2.5e-3 (bound 1e-2); defect at eps = 1
    min 2.17 (bound 0.1); spread of the score over positions min 0.33 (bound 0.05)."""
    d = 8
    a, b = random_skew_generators(d, generator)
    size = commutator(a, b).norm().item()
    for p, q in PAIRS[1:]:
        cross = abs(p[0] * q[1] - p[1] * q[0])
        eps = 0.01
        ratio = relativity_defect(eps * a, eps * b, p, q) / (0.5 * cross * eps ** 2 * size)
        assert abs(ratio - 1) < 1e-2
    assert relativity_defect(a, b, (1, 2), (3, 1)) > 0.1
    q_vec = torch.randn(d, generator=generator, dtype=torch.float64)
    k_vec = torch.randn(d, generator=generator, dtype=torch.float64)
    q_vec, k_vec = q_vec / q_vec.norm(), k_vec / k_vec.norm()
    scores = torch.tensor([float(rotation_from_generators((x, y), a, b) @ q_vec
                                 @ rotation_from_generators((x + 2, y + 1), a, b) @ k_vec)
                           for x in range(-3, 4) for y in range(-3, 4)])  # fixed offset (2, 1)
    assert scores.max() - scores.min() > 0.05  # RoPE: exactly constant (test above)


def test_random_generators_come_from_the_generator_alone(seed):
    draws = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        draws.append(random_skew_generators(6, torch.Generator().manual_seed(seed)))
    assert all(torch.equal(x, y) for x, y in zip(*draws))


def test_rotation_from_generators_on_device_matches_float64_cpu(device, generator):
    a, b = random_skew_generators(8, generator)
    ref = rotation_from_generators((2.0, -1.5), a, b)
    got = rotation_from_generators((2.0, -1.5), a.float().to(device), b.float().to(device)).cpu().double()
    # float32 matrix exponential of a matrix of norm ~5: |error| ~ 1e-6
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(ref.T @ ref, torch.eye(8, dtype=torch.float64), rtol=0, atol=1e-12)
