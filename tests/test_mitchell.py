"""Mitchell's multiplication: error in [0, 1/9] exactly, 1/9 at 1.5 x 1.5, validation and range ends."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.mitchell import mitchell_divide, mitchell_log2, mitchell_multiply, mitchell_relative_error

TINY = torch.finfo(torch.float32).tiny
BIG = torch.finfo(torch.float32).max


def relative_error(a: torch.Tensor, b: torch.Tensor, approx: torch.Tensor) -> torch.Tensor:
    """$1 - \\widetilde{ab}/(ab)$ in float64: the product of two float32 is exact in float64."""
    exact = a.double() * b.double()
    return 1 - approx.double() / exact


def test_error_between_zero_and_one_ninth(device, generator):
    # log-uniform over 60 binades: every mantissa pair and many exponents
    a = torch.exp2(torch.rand(200_000, generator=generator) * 60 - 30).to(device)
    b = torch.exp2(torch.rand(200_000, generator=generator) * 60 - 30).to(device)
    err = relative_error(a, b, mitchell_multiply(a, b))
    assert err.min().item() >= 0.0  # never above the exact product, no tolerance needed
    assert err.max().item() <= 1 / 9 + 1e-15
    # nearly attained: err >= 1/9 - 1e-3 on a neighbourhood of mantissas (1/2, 1/2) (a strip ~0.007 wide,
    # ~0.1 long) of probability > 5e-4 under this draw, so 200,000 pairs all miss it with
    # probability < (1 - 5e-4)^200000 < e^-100
    assert err.max().item() > 1 / 9 - 1e-3


def test_one_ninth_attained_at_mantissas_one_half(device):
    a = torch.tensor([1.5, 3.0, 1.5 * 2.0 ** -20, 1.5 * 2.0 ** 40], device=device)
    b = torch.tensor([1.5, 0.75, 1.5 * 2.0 ** 7, 1.5 * 2.0 ** -41], device=device)
    product = mitchell_multiply(a, b)
    assert product[0].item() == 2.0
    err = relative_error(a, b, product)
    torch.testing.assert_close(err.cpu(), torch.full((4,), 1 / 9, dtype=torch.float64), rtol=0, atol=1e-15)


def test_exact_when_one_mantissa_is_zero(device, generator):
    a = (torch.rand(1000, generator=generator) * 100 + 1e-3).to(device)
    powers = torch.exp2(torch.randint(-20, 20, (1000,), generator=generator).float()).to(device)
    assert torch.equal(mitchell_multiply(a, powers), a * powers)


def test_matches_closed_form_over_mantissa_grid(device):
    m = torch.arange(0, 2 ** 10, device=device, dtype=torch.float32) / 2 ** 10  # (1024,) exact mantissas
    a, b = (1 + m)[:, None], (1 + m)[None, :] * 8.0  # broadcasting (1024, 1) x (1, 1024)
    product = mitchell_multiply(a, b)
    assert product.shape == (1024, 1024)
    expected = mitchell_relative_error(m.double()[:, None], m.double()[None, :])
    torch.testing.assert_close(relative_error(a, b, product), expected, rtol=0, atol=1e-14)


def test_division_error_between_zero_and_one_eighth(device, generator):
    a = torch.exp2(torch.rand(200_000, generator=generator) * 60 - 30).to(device)
    b = torch.exp2(torch.rand(200_000, generator=generator) * 60 - 30).to(device)
    over = mitchell_divide(a, b).double() / (a.double() / b.double()) - 1
    # the float64 quotient is rounded: allow 1e-15 on the lower bound
    assert over.min().item() >= -1e-15 and over.max().item() <= 1 / 8 + 1e-15
    exact_case = mitchell_divide(torch.tensor([1.0, 4.0, 2.0 ** 20], device=device),
                                 torch.tensor([1.5, 1.5 * 2 ** 3, 2.0 ** -30], device=device)).cpu()
    assert exact_case.tolist() == [0.75, 0.75 / 2, 2.0 ** 50]  # 0.75 vs 2/3: the 1/8 maximum


def test_log2_is_exponent_plus_mantissa(device):
    x = torch.tensor([1.0, 1.5, 6.0, 0.375, 2.0 ** -140], device=device)
    expected = torch.tensor([0.0, 0.5, 2.5, -2 + 0.5, -140.0], dtype=torch.float64)
    torch.testing.assert_close(mitchell_log2(x).cpu(), expected, rtol=0, atol=0)


def test_batch_dims_and_scalars(device):
    a = torch.full((2, 3, 4), 1.5, device=device)
    assert mitchell_multiply(a, torch.tensor(1.5, device=device)).eq(2.0).all()
    assert mitchell_multiply(torch.tensor(3.0, device=device), torch.tensor(5.0, device=device)).item() == 14.0
    assert mitchell_multiply(a[:, ::2, 1:], a.transpose(0, 2)[1:, ::2, :1].transpose(0, 2)).shape == (2, 2, 3)


def test_overflow_gives_inf(device):
    a = torch.tensor([BIG, BIG, 2.0 ** 127, 2.0 ** 127 * 1.5, 2.0 ** 100], device=device)
    b = torch.tensor([1.0, 2.0, 1.5, 1.5, 2.0 ** 28], device=device)
    product = mitchell_multiply(a, b).cpu()
    assert product[0].item() == BIG  # zero mantissa in b: exact
    assert math.isinf(product[1].item()) and product[1].item() > 0
    assert product[2].item() == 1.5 * 2.0 ** 127  # exact product still representable
    # exact 2.25 * 2^127 > max; Mitchell's 2 * 2^127 = 2^128 is not representable either
    assert math.isinf(product[3].item())
    assert math.isinf(product[4].item())


def test_underflow_flushes_to_zero_and_subnormal_inputs_work(device):
    sub = 1.5 * 2.0 ** -140  # a subnormal float32, stored exactly
    a = torch.tensor([2.0 ** -100, sub, sub, TINY, 1.5 * 2.0 ** -63], device=device)
    b = torch.tensor([2.0 ** -30, 2.0 ** 100, 1.5 * 2.0 ** 150 / 2 ** 30, 1.0, 1.5 * 2.0 ** -63], device=device)
    product = mitchell_multiply(a, b).cpu()
    assert product[0].item() == 0.0  # 2^-130 is below the normal range: flushed
    assert product[1].item() == sub * 2.0 ** 100  # subnormal input, normal result: exact
    assert product[2].item() == 2.0 ** (-140 + 120 + 1)  # 1.5 x 1.5 -> 2 with subnormal input
    assert product[3].item() == TINY
    assert product[4].item() == 2.0 ** -125  # exact 2.25 * 2^-126 -> Mitchell 2 * 2^-126


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_rejects_non_positive_or_non_finite(device, bad):
    a = torch.tensor([1.0, bad], device=device)
    with pytest.raises(ValueError, match="positive"):
        mitchell_multiply(a, torch.ones(2, device=device))
    with pytest.raises(ValueError, match="positive"):
        mitchell_multiply(torch.ones(2, device=device), a)


def test_rejects_wrong_types(device):
    with pytest.raises(TypeError, match="float32"):
        mitchell_multiply(torch.ones(3, dtype=torch.float64, device=device), torch.ones(3, device=device))
    with pytest.raises(TypeError, match="float32"):
        mitchell_multiply(torch.ones(3, device=device), torch.ones(3, dtype=torch.int32, device=device))
    with pytest.raises(TypeError, match="Tensor"):
        mitchell_multiply(1.5, torch.ones(3, device=device))
    with pytest.raises(ValueError, match="positive"):
        mitchell_divide(torch.ones(3, device=device), torch.zeros(3, device=device))


def test_device_matches_cpu_bit_for_bit(device, generator):
    """Integer arithmetic on the float32 bits: every device gives the very same bits as the CPU."""
    a = torch.exp2(torch.rand(10_000, generator=generator) * 60 - 30)
    b = torch.exp2(torch.rand(10_000, generator=generator) * 60 - 30)
    assert torch.equal(mitchell_multiply(a.to(device), b.to(device)).cpu(), mitchell_multiply(a, b))
    assert torch.equal(mitchell_divide(a.to(device), b.to(device)).cpu(), mitchell_divide(a, b))
