r"""变分自编码器（七）：球面上的VAE（vMF-VAE） — https://kexue.fm/archives/8404

Companion to Davidson et al., "Hyperspherical Variational Auto-Encoders" (2018) and Xu & Durrett,
"Spherical Latent Spaces for Stable Variational Autoencoders" (2018). The posterior is the
von Mises–Fisher distribution on the unit sphere of $\mathbb{R}^d$ and the prior is the uniform one:

.. math::

    p(x) = C_d(\kappa)\, e^{\kappa\langle\mu, x\rangle},\qquad
    C_d(\kappa) = \frac{\kappa^{d/2-1}}{(2\pi)^{d/2} I_{d/2-1}(\kappa)},

    KL\big(p(x)\Vert q(x)\big) = \kappa A_d(\kappa) + \log C_d(\kappa) + \log\frac{2\pi^{d/2}}{\Gamma(d/2)},
    \qquad A_d(\kappa) = \frac{I_{d/2}(\kappa)}{I_{d/2-1}(\kappa)} = \mathbb{E}\,\langle\mu, x\rangle .

The KL term depends on $\kappa$ only, never on $\mu$: with $\kappa$ fixed it is a positive constant and
cannot vanish. Sampling (Wood, 1994) writes $x = w\mu + \sqrt{1-w^2}\,\nu$ with $\nu$ uniform on the
tangent sphere and $w$ drawn by rejection from $p(w)\propto e^{\kappa w}(1-w^2)^{(d-3)/2}$; the result
is differentiable in $\mu$ (the reparameterisation used when $\kappa$ is a fixed hyperparameter).

Bessel functions of any integer or half-integer order are computed from ratios: Perron's continued
fraction for $I_\nu/I_{\nu-1}$ (a few dozen terms for every $\nu$ and $\kappa$), then the stable
backward recurrence $r_{\nu-1} = 1/(2(\nu-1)/\kappa + r_\nu)$, anchored at $I_0$ or $I_{-1/2}$.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from spaces_code.randomness import generator_device, randn


def _as_kappa(kappa: float | Tensor) -> Tensor:
    kappa = torch.as_tensor(kappa, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(kappa) & (kappa > 0))):
        raise ValueError("kappa must be finite and > 0")
    return kappa


def bessel_ratio(nu: float, kappa: float | Tensor, max_terms: int = 500) -> Tensor:
    r"""$r_\nu(\kappa) = I_\nu(\kappa)/I_{\nu-1}(\kappa)$ for $\nu > 0$, elementwise, in float64."""
    if not nu > 0:
        raise ValueError(f"bessel_ratio needs nu > 0, got {nu}")
    x = _as_kappa(kappa)
    # Perron: r_nu = x / (2nu + x - (2nu+1)x / (2nu+1+2x - (2nu+3)x / (2nu+2+2x - ...)))
    # evaluated by the modified Lentz method; every term is tested for convergence.
    tiny = 1e-300
    f = 2 * nu + x
    c, d = f.clone(), torch.zeros_like(x)
    for k in range(1, max_terms):
        a = -(2 * nu + 2 * k - 1) * x
        b = 2 * nu + k + 2 * x
        d = b + a * d
        d = 1.0 / torch.where(d.abs() < tiny, torch.full_like(d, tiny), d)
        c = b + a / c
        c = torch.where(c.abs() < tiny, torch.full_like(c, tiny), c)
        delta = c * d
        f = f * delta
        if bool(torch.all((delta - 1).abs() < 4e-16)):
            break
    return x / f


def mean_resultant_length(dim: int, kappa: float | Tensor) -> Tensor:
    r"""$A_d(\kappa) = I_{d/2}(\kappa)/I_{d/2-1}(\kappa) = \mathbb{E}\langle\mu, x\rangle$ (float64)."""
    _check_dim(dim)
    return bessel_ratio(dim / 2, kappa)


def log_bessel_iv(nu: float, kappa: float | Tensor) -> Tensor:
    r"""$\log I_\nu(\kappa)$ for $\nu \ge 0$ an integer or half-integer, elementwise, in float64."""
    if nu < 0 or (2 * nu) != int(2 * nu):
        raise ValueError(f"log_bessel_iv needs nu an integer or half-integer >= 0, got {nu}")
    x = _as_kappa(kappa)
    if nu == int(nu):
        # log I_0(x) = log(i0e(x)) + x
        start, log_i = 0.0, torch.log(torch.special.i0e(x)) + x
    else:
        # I_{-1/2}(x) = sqrt(2/(pi x)) cosh x, with log cosh x = x + log1p(e^{-2x}) - log 2
        start = -0.5
        log_i = 0.5 * torch.log(2 / (math.pi * x)) + x + torch.log1p(torch.exp(-2 * x)) - math.log(2)
    steps = int(round(nu - start))
    if steps == 0:
        return log_i
    # log I_nu = log I_start + sum_{j=start+1}^{nu} log r_j, with r_{j-1} = 1/(2(j-1)/x + r_j)
    r = bessel_ratio(nu, x)
    log_sum = torch.log(r)
    for j in range(steps - 1, 0, -1):
        r = 1.0 / (2 * (start + j) / x + r)
        log_sum = log_sum + torch.log(r)
    return log_i + log_sum


def _scalar_kappa(kappa: float | Tensor) -> float:
    if isinstance(kappa, Tensor):
        if kappa.numel() != 1:
            raise ValueError("kappa must be a scalar")
        kappa = kappa.item()
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not math.isfinite(kappa) or kappa <= 0:
        raise ValueError(f"kappa must be a finite number > 0, got {kappa!r}")
    return float(kappa)


def _check_dim(dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")


def log_sphere_area(dim: int) -> float:
    r"""$\log|S^{d-1}| = \log\big(2\pi^{d/2}/\Gamma(d/2)\big)$, the sphere in $\mathbb{R}^d$."""
    return math.log(2.0) + dim / 2 * math.log(math.pi) - math.lgamma(dim / 2)


def vmf_log_normalizer(dim: int, kappa: float | Tensor) -> Tensor:
    r"""$\log C_d(\kappa) = (d/2-1)\log\kappa - (d/2)\log 2\pi - \log I_{d/2-1}(\kappa)$ (float64)."""
    _check_dim(dim)
    x = _as_kappa(kappa)
    return (dim / 2 - 1) * torch.log(x) - dim / 2 * math.log(2 * math.pi) - log_bessel_iv(dim / 2 - 1, x)


def vmf_log_prob(x: Tensor, mu: Tensor, kappa: float | Tensor) -> Tensor:
    r"""$\log p(x) = \log C_d(\kappa) + \kappa\langle\mu, x\rangle$ for unit vectors ``x`` (..., d)."""
    dim = mu.shape[-1]
    log_c = vmf_log_normalizer(dim, kappa).to(device=x.device)
    # (...,) = log C_d + kappa <mu, x>
    return log_c + torch.as_tensor(kappa, dtype=torch.float64, device=x.device) * (
        x.to(torch.float64) @ mu.to(torch.float64))


def vmf_w_log_density(dim: int, kappa: float | Tensor, w: Tensor) -> Tensor:
    r"""Log-density of $w = \langle\mu, x\rangle$ on $(-1, 1)$, elementwise in ``w`` (float64)."""
    w = w.to(torch.float64)
    log_c = vmf_log_normalizer(dim, kappa).to(w.device)
    log_area = log_sphere_area(dim - 1)  # |S^{d-2}|; for d = 2, |S^0| = 2 points
    # p(w) = C_d(kappa) |S^{d-2}| e^{kappa w} (1 - w^2)^{(d-3)/2}
    return log_c + log_area + kappa * w + (dim - 3) / 2 * torch.log1p(-w * w)


def kl_vmf_uniform(dim: int, kappa: float | Tensor) -> Tensor:
    r"""$KL(\mathrm{vMF}(\mu,\kappa)\Vert U(S^{d-1}))$; independent of $\mu$ (float64)."""
    x = _as_kappa(kappa)
    # KL = kappa A_d(kappa) + log C_d(kappa) + log(2 pi^{d/2} / Gamma(d/2))
    return x * mean_resultant_length(dim, x) + vmf_log_normalizer(dim, x) + log_sphere_area(dim)


def _symmetric_beta(alpha_dim: int, n: int, generator, device) -> Tensor:
    """Beta((d-1)/2, (d-1)/2) as (1 + g_1/|g|)/2 with g ~ N(0, I_d): the first coordinate of a uniform point."""
    g = torch.randn(n, alpha_dim, generator=generator, device=device, dtype=torch.float64)  # (n, d)
    t = g[:, 0]
    rest = g[:, 1:].square().sum(-1)
    r = torch.sqrt(t.square() + rest)
    # (r + t)/(2r), rewritten as rest / (2r(r - t)) where t < 0 to avoid cancellation
    return torch.where(t >= 0, (r + t) / (2 * r), rest / (2 * r * (r - t)))


def sample_vmf_w(dim: int, kappa: float, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    r"""$1 - w$ for $w\sim p(w)\propto e^{\kappa w}(1-w^2)^{(d-3)/2}$ by Wood's rejection (float64, (n,)).

    The rejection loop runs on the generator's device; the result is moved to ``device`` (default: there).
    """
    _check_dim(dim)
    target = generator_device(generator) if device is None else torch.device(device)
    device = generator_device(generator)
    kappa = _scalar_kappa(kappa)
    m1 = dim - 1
    # b = (-2 kappa + sqrt(4 kappa^2 + (d-1)^2)) / (d-1), written without cancellation
    b = m1 / (2 * kappa + math.sqrt(4 * kappa ** 2 + m1 ** 2))
    out = torch.empty(n, dtype=torch.float64, device=device)
    filled = 0
    while filled < n:
        todo = n - filled
        z = _symmetric_beta(dim, todo, generator, device)  # (todo,)
        u = torch.rand(todo, generator=generator, device=device, dtype=torch.float64)
        denom = 1 - (1 - b) * z
        # w = (1 - (1+b)z) / (1 - (1-b)z), so 1 - w = 2bz / (1 - (1-b)z) exactly
        one_minus_w = 2 * b * z / denom
        # accept iff kappa w + (d-1) log(1 - x0 w) - c >= log u, x0 = (1-b)/(1+b),
        # c = kappa x0 + (d-1) log(1 - x0^2); rearranged so that no term cancels:
        log_ratio = kappa * 2 * b * (1 - 2 * z) / ((1 + b) * denom) + m1 * torch.log((1 + b) / (2 * denom))
        accepted = one_minus_w[log_ratio >= torch.log(u)]
        out[filled:filled + accepted.numel()] = accepted
        filled += accepted.numel()
    return out.to(target)


def sample_vmf(mu: Tensor, kappa: float | Tensor, n: int,
               generator: torch.Generator | None = None) -> Tensor:
    r"""(n, d) unit vectors from vMF($\mu$, $\kappa$): exact for every $d \ge 2$ and $\kappa > 0$."""
    if not isinstance(mu, Tensor) or not mu.is_floating_point() or mu.dim() != 1:
        raise ValueError("mu must be a floating-point tensor of shape (d,)")
    dim = mu.shape[0]
    _check_dim(dim)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    kappa = _scalar_kappa(kappa)
    if not bool(torch.all(torch.isfinite(mu))):
        raise ValueError("mu must be finite")
    mu64 = mu.to(torch.float64)
    norm = mu64.norm()
    if abs(norm.item() - 1) > max(1e-4, 10 * torch.finfo(mu.dtype).eps):
        raise ValueError(f"mu must be a unit vector, got norm {norm.item():.6g}")
    mu64 = mu64 / norm
    # drawn on the generator's device and moved to mu's: a CPU generator gives the same sample everywhere
    one_minus_w = sample_vmf_w(dim, kappa, n, generator, mu.device)[:, None]  # (n, 1)
    # nu: uniform on the unit sphere of the tangent space {v : <v, mu> = 0}
    xi = randn(n, dim, generator=generator, device=mu.device, dtype=torch.float64)  # (n, d)
    tangent = xi - (xi @ mu64)[:, None] * mu64
    tangent = tangent / tangent.norm(dim=-1, keepdim=True)
    # x = w mu + sqrt(1 - w^2) nu, with 1 - w^2 = (1-w)(2-(1-w))
    x = (1 - one_minus_w) * mu64 + torch.sqrt(one_minus_w * (2 - one_minus_w)) * tangent
    x = x / x.norm(dim=-1, keepdim=True)
    return x.to(mu.dtype)
