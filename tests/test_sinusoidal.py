"""Sinusoidal position encoding (https://kexue.fm/archives/8231): <p_m, p_n> depends only on m - n;
p_{m+k} is a rotation of p_m; the long-range decay matches its integral approximation."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.rope import rope_matrix
from spaces_code.sinusoidal import decay_integral, relative_inner_product, sinusoidal_position_encoding


def test_definition_against_scalar_formula(device):
    d = 6
    p = sinusoidal_position_encoding(torch.tensor([0, 3, 250], device=device), d)
    for row, k in enumerate([0, 3, 250]):
        for i in range(d // 2):
            assert math.isclose(p[row, 2 * i].item(), math.sin(k / 10000 ** (2 * i / d)), abs_tol=1e-12)
            assert math.isclose(p[row, 2 * i + 1].item(), math.cos(k / 10000 ** (2 * i / d)), abs_tol=1e-12)


@pytest.mark.parametrize("d", [2, 16, 128])
def test_inner_product_depends_only_on_offset(device, d):
    positions = torch.cat((torch.arange(50), torch.tensor([1000, 1007, 5000])))
    p = sinusoidal_position_encoding(positions.to(device), d)  # (n, d)
    gram = p @ p.T  # <p_m, p_n>
    offsets = positions[:, None] - positions[None, :]
    torch.testing.assert_close(gram, relative_inner_product(offsets.to(device), d), rtol=1e-9, atol=1e-9)
    # Toeplitz: equal offsets give equal inner products wherever they occur
    for k in (0, 1, 7, 31):
        diagonal = torch.diagonal(gram[:50, :50], offset=k)
        assert (diagonal - diagonal[0]).abs().max() < 1e-9
    # and the value is even in the offset: <p_m, p_n> = <p_n, p_m>
    torch.testing.assert_close(gram, gram.T, rtol=0, atol=0)


def test_shift_is_a_rotation(device):
    """p_{m+k} = R_{-k} p_m with the RoPE block rotation R (same frequencies 10000^{-2i/d})."""
    d = 32
    for m, k in [(0, 1), (5, 17), (300, -41)]:
        p_m, p_mk = sinusoidal_position_encoding(torch.tensor([m, m + k], device=device), d)
        torch.testing.assert_close(p_mk, rope_matrix(-k, d, device=device) @ p_m, rtol=1e-9, atol=1e-9)


def test_long_range_decay_and_integral_approximation(device):
    offsets = torch.arange(0, 2001, device=device)
    approx = decay_integral(offsets[:201])
    # <p_m, p_n> / (d/2) is a Riemann sum of the integral: the gap shrinks as d grows
    gaps = [(relative_inner_product(offsets[:201], d) / (d / 2) - approx).abs().max().item()
            for d in (128, 512, 2048)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01
    # decay: the average over a window of offsets falls from the first window to the last
    exact = relative_inner_product(offsets, 512) / 256
    windows = exact[1:].view(-1, 200).mean(dim=1)  # offsets 1..2000 in windows of 200
    assert windows[0] > 3 * windows[-1].abs()
    assert exact[0] == 1.0 and torch.all(exact[1:] < 1.0)


def test_odd_dimension_raises():
    with pytest.raises(ValueError):
        sinusoidal_position_encoding(torch.arange(3), 5)


def test_device_matches_cpu_float64(device):
    """The encoding is computed in float64 wherever it runs: CUDA's cos/sin differ from CPU's by ulps."""
    positions = torch.arange(0, 3000, 7)
    ref = sinusoidal_position_encoding(positions, 64)
    got = sinusoidal_position_encoding(positions.to(device), 64).cpu()
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
    offsets = torch.arange(-500, 500)
    torch.testing.assert_close(relative_inner_product(offsets.to(device), 64).cpu(),
                               relative_inner_product(offsets, 64), rtol=0, atol=1e-9)
