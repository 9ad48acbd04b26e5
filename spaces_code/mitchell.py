r"""Mitchell近似：乘法变为加法，误差不超过1/9 — https://kexue.fm/archives/7991

Paper: J. N. Mitchell, "Computer Multiplication and Division Using Binary Logarithms" (IRE Transactions
on Electronic Computers, 1962).

Write a positive number as $x = 2^{n}(1 + m)$ with an integer exponent $n$ and a mantissa $m\in[0,1)$.
Mitchell's approximation of the binary logarithm is $\log_2 x \approx n + m$, i.e. $\log_2(1+m)\approx m$.
Multiplying means adding logarithms; converting the sum back with the same approximation gives

$$
xy \approx \begin{cases} 2^{n_x+n_y}(1 + m_x + m_y), & m_x + m_y < 1,\\
2^{n_x+n_y+1}(m_x + m_y), & m_x + m_y \geq 1,\end{cases}
$$

whose relative error $1 - \widetilde{xy}/(xy)$ lies in $[0, 1/9]$; the maximum $1/9$ is reached at
$m_x = m_y = 1/2$ ($1.5\times1.5 = 2.25$ becomes $2$). Division subtracts the logarithms instead; its
result is never below the exact quotient and at most $1/8$ above it.

A float32 stores $2^{n}(1+m)$ as the integer $I = (n + 127)\cdot 2^{23} + m\cdot 2^{23}$, so
$I/2^{23} - 127$ *is* Mitchell's logarithm and the whole algorithm is one integer addition:

$$I_{xy} = I_x + I_y - 127\cdot 2^{23}.$$

Range (float32 has 8 exponent bits): subnormal inputs are first scaled by $2^{24}$ (exact), so every
positive finite float32 is accepted. A result whose biased exponent exceeds 254 is returned as ``+inf``
(as float32 multiplication overflows); a result below the smallest normal float32 $2^{-126}$ is flushed
to ``0`` (the trick has no exponent left for it). In between, the bound $0\le$ error $\le 1/9$ holds
exactly: the integer addition involves no rounding.
"""
from __future__ import annotations

import torch
from torch import Tensor

MANTISSA_BITS = 23
EXPONENT_BIAS = 127
SUBNORMAL_SCALE_BITS = 24  # 2^-149 * 2^24 = 2^-125 is normal: one rescaling suffices
_TINY = torch.finfo(torch.float32).tiny  # smallest normal float32, 2^-126


def _check_positive_float32(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.float32:
        raise TypeError(f"{name} must be float32 (the bit trick uses its 8-bit exponent), got {x.dtype}")
    if not bool(torch.all(torch.isfinite(x) & (x > 0))):
        raise ValueError(f"{name} must be positive and finite: Mitchell's logarithm needs x > 0")


def _biased_log_bits(x: Tensor) -> Tensor:
    r"""The integer $I = 2^{23}(\log_2 x + 127)$ in Mitchell's sense, as int64 (subnormals rescaled)."""
    subnormal = x < _TINY
    scaled = torch.where(subnormal, x * 2.0 ** SUBNORMAL_SCALE_BITS, x)  # exact: a power of two
    bits = scaled.view(torch.int32).to(torch.int64)
    # dividing by 2^24 subtracts 24 from the exponent field, i.e. 24 * 2^23 from I
    return bits - subnormal.to(torch.int64) * (SUBNORMAL_SCALE_BITS << MANTISSA_BITS)


def _from_log_bits(bits: Tensor) -> Tensor:
    """float32 from Mitchell's integer logarithm (int64): ``+inf`` above the range, ``0`` below $2^{-126}$."""
    overflow = bits >= (255 << MANTISSA_BITS)  # exponent field 255 means inf/NaN
    underflow = bits < (1 << MANTISSA_BITS)  # exponent field 0 would be read as subnormal
    safe = bits.clamp(1 << MANTISSA_BITS, (255 << MANTISSA_BITS) - 1).to(torch.int32).view(torch.float32)
    safe = torch.where(overflow, torch.full_like(safe, float("inf")), safe)
    return torch.where(underflow, torch.zeros_like(safe), safe)


def mitchell_multiply(a: Tensor, b: Tensor) -> Tensor:
    r"""Mitchell's approximate product of positive float32 tensors ``a`` and ``b`` (broadcast).

    Returns float32 with $ab(1 - \delta)$, $0 \le \delta \le 1/9$, for results in the normal float32
    range; ``+inf`` above it and ``0`` below $2^{-126}$ (see the module docstring).
    Raises ``TypeError`` for non-tensors or non-float32 input, ``ValueError`` for non-positive, NaN or
    infinite entries.
    """
    _check_positive_float32("a", a)
    _check_positive_float32("b", b)
    a, b = torch.broadcast_tensors(a, b)
    # $I_{xy} = I_x + I_y - 127\cdot 2^{23}$  (int64: no wrap-around near the ends of the range)
    return _from_log_bits(_biased_log_bits(a) + _biased_log_bits(b) - (EXPONENT_BIAS << MANTISSA_BITS))


def mitchell_divide(a: Tensor, b: Tensor) -> Tensor:
    r"""Mitchell's approximate quotient $a/b$: $I_{x/y} = I_x - I_y + 127\cdot 2^{23}$ (same conventions).

    Division errs the other way: the result is $\frac{a}{b}(1 + \delta)$ with $0 \le \delta \le 1/8$,
    the maximum at mantissas $1 / 1.5$ ($0.75$ instead of $0.\overline{6}$).
    """
    _check_positive_float32("a", a)
    _check_positive_float32("b", b)
    a, b = torch.broadcast_tensors(a, b)
    # $\log_2(x/y) \approx (n_x + m_x) - (n_y + m_y)$
    return _from_log_bits(_biased_log_bits(a) - _biased_log_bits(b) + (EXPONENT_BIAS << MANTISSA_BITS))


def mitchell_log2(x: Tensor) -> Tensor:
    r"""Mitchell's logarithm $n + m \approx \log_2 x$ read off the float32 bits (float64 result)."""
    _check_positive_float32("x", x)
    return _biased_log_bits(x).to(torch.float64) / 2 ** MANTISSA_BITS - EXPONENT_BIAS


def mitchell_relative_error(m_x: Tensor, m_y: Tensor) -> Tensor:
    r"""Closed form of $1 - \widetilde{xy}/(xy)$ as a function of the two mantissas in $[0, 1)$."""
    exact = (1 + m_x) * (1 + m_y)
    s = m_x + m_y
    # $1 + m_x + m_y$ without carry, $2(m_x + m_y)$ with carry into the exponent
    approx = torch.where(s < 1, 1 + s, 2 * s)
    return 1 - approx / exact
