r"""从变分编码、信息瓶颈到正态分布：论遗忘的重要性 — https://kexue.fm/archives/6181

Companion to Kingma & Welling, "Auto-Encoding Variational Bayes" (2013), and Alemi et al.,
"Deep Variational Information Bottleneck" (2016). The VAE minimises

$$KL\big(\tilde{p}(x)p(z|x)\Vert q(z)q(x|z)\big)
= \mathbb{E}_{x\sim\tilde{p}(x)}\Big[\mathbb{E}_{z\sim p(z|x)}\big[-\log q(x|z)\big]
  + KL\big(p(z|x)\Vert q(z)\big)\Big] + \text{const},$$

with $p(z|x) = \mathcal{N}(\mu(x), \sigma^2(x))$ and $q(z) = \mathcal{N}(0, I)$, for which

$$KL\big(p(z|x)\Vert q(z)\big) = \frac{1}{2}\sum_{i=1}^{d}\big(\mu_i^2(x) + \sigma_i^2(x) - \log \sigma_i^2(x) - 1\big).$$

Averaged over the data, this term bounds the information the code keeps about the input,
$\mathbb{E}_x KL(p(z|x)\Vert q(z)) = I(x; z) + KL(p(z)\Vert q(z)) \ge I(x; z)$: weighting it by
$\beta$ (the information bottleneck) decides how much of $x$ the encoder is allowed to "forget".
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spaces_code.randomness import init_parameters_, randn


def kl_diag_gaussians(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    r"""$KL(\mathcal{N}(\mu_1, \sigma_1^2)\Vert\mathcal{N}(\mu_2, \sigma_2^2))$, summed over the last dim (...,)."""
    # 1/2 sum_i [ log(s2^2/s1^2) + (s1^2 + (m1 - m2)^2) / s2^2 - 1 ]
    return 0.5 * (logvar2 - logvar1 + (torch.exp(logvar1) + (mu1 - mu2).square()) * torch.exp(-logvar2)
                  - 1).sum(-1)


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""$\frac{1}{2}\sum_i(\mu_i^2 + \sigma_i^2 - \log\sigma_i^2 - 1)$ (...,)."""
    zeros = torch.zeros_like(mu)
    return kl_diag_gaussians(mu, logvar, zeros, zeros)


def diag_gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""$\log\mathcal{N}(z; \mu, \sigma^2)$ summed over the last dim (...,)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""$z = \mu + \sigma\odot\varepsilon$, $\varepsilon\sim\mathcal{N}(0, I)$: differentiable in $\mu, \sigma$."""
    eps = randn(*mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)  # drawn on the generator's device
    # $z = \mu + \sigma\odot\varepsilon$
    return mu + torch.exp(0.5 * logvar) * eps


def kl_monte_carlo(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor, n_samples: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    r"""Monte Carlo $KL = \mathbb{E}_{z\sim p_1}[\log p_1(z) - \log p_2(z)]$.

    Returns (estimate, standard error), each of shape (...,).
    """
    z = reparameterize(mu1.expand(n_samples, *mu1.shape), logvar1.expand(n_samples, *logvar1.shape),
                       generator)  # (n_samples, ..., d)
    log_ratio = diag_gaussian_log_prob(z, mu1, logvar1) - diag_gaussian_log_prob(z, mu2, logvar2)
    return log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n_samples)


def mutual_information(mu: Tensor, logvar: Tensor, n_samples: int = 1,
                       generator: torch.Generator | None = None) -> Tensor:
    r"""$I(x; z)$ when $x$ is uniform over the ``batch`` rows of ``mu``, ``logvar`` (batch, d).

    $I = \mathbb{E}_{i}\mathbb{E}_{z\sim p(z|x_i)}\big[\log p(z|x_i) - \log\frac{1}{N}\sum_j p(z|x_j)\big]$,
    a Monte Carlo estimate that lies in $[0, \log N]$.
    """
    batch = mu.shape[0]
    z = reparameterize(mu.expand(n_samples, *mu.shape), logvar.expand(n_samples, *logvar.shape),
                       generator)  # (n_samples, batch, d)
    # log p(z_{s,i} | x_j): (n_samples, batch, batch)
    log_q = diag_gaussian_log_prob(z[:, :, None, :], mu[None, None], logvar[None, None])
    log_marginal = torch.logsumexp(log_q, dim=-1) - math.log(batch)
    return (log_q.diagonal(dim1=-2, dim2=-1) - log_marginal).mean()


class VAE(nn.Module):
    r"""Gaussian encoder $p(z|x)$ and decoder mean $\hat{x}(z)$.

    The decoder has unit variance: $-\log q(x|z) = \frac{1}{2}\Vert x - \hat{x}(z)\Vert^2$ + const.
    """

    def __init__(self, x_dim: int = 2, z_dim: int = 2, hidden: int = 64, generator: torch.Generator | None = None):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(x_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, x_dim))
        init_parameters_(self, generator)  # weights from the generator, never the global RNG

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (..., z_dim) each
        return mu, logvar

    def losses(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(reconstruction, KL), each (...,); the training objective is ``reconstruction + beta * KL``."""
        mu, logvar = self.encode(x)
        x_hat = self.decoder(reparameterize(mu, logvar, generator))
        # -log q(x|z) = 1/2 ||x - x_hat||^2 + const, one sample of z ~ p(z|x)
        reconstruction = 0.5 * (x - x_hat).square().sum(-1)
        return reconstruction, kl_to_standard_normal(mu, logvar)
