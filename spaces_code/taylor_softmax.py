r"""exp(x)在x=0处的偶次泰勒展开式总是正的 — https://kexue.fm/archives/7919

The truncated exponential series and the softmax alternative built from it (Taylor softmax, de Brébisson
& Vincent, "An Exploration of Softmax Alternatives Belonging to the Spherical Loss Family", ICLR 2016;
Banerjee et al., "Exploring Alternatives to Softmax Function", 2020).

$$f_n(x) = \sum_{k=0}^n \frac{x^k}{k!}.$$

Claim: $f_n(x) > 0$ for every real $x$ when $n$ is even. Proof in the article: $f_n\to+\infty$ at
$\pm\infty$, so the minimum is attained at a critical point, where $f_n'(x) = f_{n-1}(x) = 0$ and hence

$$f_n(x) = f_{n-1}(x) + \frac{x^n}{n!} = \frac{x^n}{n!} > 0$$

($x = 0$ is not critical since $f_{n-1}(0) = 1$). For even $n$, $f_{n-1}' = f_{n-2} > 0$ by induction,
so $f_{n-1}$ is increasing and $f_n$ has exactly one critical point: its global minimum.

Taylor softmax replaces $e^{x_i}$ by $f_n(x_i)$, even $n$:

$$p_i = \frac{f_n(x_i)}{\sum_j f_n(x_j)}.$$
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# Near its minimum $x_n \approx -0.28n$, $f_n$ is a sum of alternating terms as large as $e^{|x_n|}$ that
# cancel down to $x_n^n/n!$: float64 resolves that value to ~1e-7 relative up to n = 40, not much beyond
# (float32 only up to n of about 20).
MAX_CRITICAL_ORDER = 40


def _check_order(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"the order n must be a non-negative integer, got {n!r}")


def exp_taylor(x: Tensor, n: int) -> Tensor:
    r"""$f_n(x) = \sum_{k=0}^n x^k/k!$ elementwise, by Horner's rule (same shape and dtype as ``x``).

    $f_n(x) = 1 + \frac{x}{1}\Big(1 + \frac{x}{2}\Big(1 + \cdots\Big(1 + \frac{x}{n}\Big)\Big)\Big)$ needs
    neither factorials nor powers (no $k!$ overflow, $n$ multiply-adds). For negative $x$ the sum still
    cancels: see ``MAX_CRITICAL_ORDER`` for the accuracy near the minimum.
    """
    _check_order(n)
    result = torch.ones_like(x)
    for k in range(n, 0, -1):
        # $1 + \frac{x}{k} r$, innermost factor first
        result = 1 + (x / k) * result
    return result


def taylor_softmax(x: Tensor, n: int = 2, dim: int = -1) -> Tensor:
    r"""$p_i = f_n(x_i) / \sum_j f_n(x_j)$ along ``dim``; ``n`` must be even so that every $f_n(x_i) > 0$.

    Unlike softmax it is not shift-invariant and decays polynomially, not exponentially, in the logits.
    """
    _check_order(n)
    if n % 2:
        raise ValueError(f"taylor_softmax needs an even order n (odd orders take negative values), got {n}")
    weights = exp_taylor(x, n)  # (..., k, ...) all > 0
    return weights / weights.sum(dim=dim, keepdim=True)


def taylor_cross_entropy(logits: Tensor, target: Tensor, n: int = 2) -> Tensor:
    r"""Mean $-\log p_{y}$ under :func:`taylor_softmax` over the last axis: logits (..., k), target (...) ints.

    $-\log p_y = \log\sum_j f_n(x_j) - \log f_n(x_y)$, well defined because every $f_n(x_j) > 0$.
    """
    probs = taylor_softmax(logits, n, dim=-1)  # (..., k)
    picked = probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (...)
    return -picked.log().mean()


def critical_points(n: int, newton_steps: int = 3) -> Tensor:
    r"""All real roots of $f_n' = f_{n-1}$ in float64, i.e. every critical point of $f_n$ ($n \ge 2$).

    Computed as the real eigenvalues of the companion matrix of $f_{n-1}$ (scaled to be monic:
    $(n-1)!\,f_{n-1}(x) = x^{n-1} + (n-1)x^{n-2} + (n-1)(n-2)x^{n-3} + \dots + (n-1)!$), then polished by
    Newton steps $x \leftarrow x - f_{n-1}(x)/f_{n-2}(x)$. Sorted ascending.
    """
    _check_order(n)
    if not 2 <= n <= MAX_CRITICAL_ORDER:
        raise ValueError(f"critical_points needs 2 <= n <= {MAX_CRITICAL_ORDER} (float64 cancellation), "
                         f"got n={n}")
    degree = n - 1
    # monic coefficients $c_j = (n-1)!/j!$ of $x^j$
    monic = torch.tensor([math.prod(range(j + 1, n)) for j in range(n)], dtype=torch.float64)  # (n,)
    companion = torch.zeros(degree, degree, dtype=torch.float64)
    companion[1:, :-1] = torch.eye(degree - 1, dtype=torch.float64)
    companion[:, -1] = -monic[:-1]
    roots = torch.linalg.eigvals(companion)  # (n-1,) complex
    scale = roots.abs().clamp_min(1.0)
    real = roots.real[roots.imag.abs() <= 1e-6 * scale]
    for _ in range(newton_steps):
        # $x \leftarrow x - f_{n-1}(x)/f_{n-1}'(x)$
        real = real - exp_taylor(real, degree) / exp_taylor(real, degree - 1)
    return real.sort().values
