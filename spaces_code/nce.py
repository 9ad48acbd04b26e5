r"""“噪声对比估计”杂谈：曲径通幽之妙 — https://kexue.fm/archives/5617

Papers: Gutmann & Hyvärinen, "Noise-contrastive estimation: A new estimation principle for
unnormalized statistical models" (AISTATS 2010); Mnih & Teh (2012) and Mikolov et al. (2013) for its
use in language models and word2vec (negative sampling). The model is a Boltzmann distribution

$$p(\boldsymbol{x}) = \frac{e^{G(\boldsymbol{x};\boldsymbol{\theta})}}{Z(\boldsymbol{\theta})}$$

whose $Z$ we do not compute. NCE treats $\gamma = \log Z$ as one more parameter and trains a logistic
classifier to tell data $\boldsymbol{x}\sim\tilde p$ from $\nu$ times as many noise samples
$\boldsymbol{x}\sim q$ (a known, easy distribution):

$$\min_{\boldsymbol{\theta},\gamma}\; -\mathbb{E}_{\boldsymbol{x}\sim\tilde p}\log\sigma(s(\boldsymbol{x}))
 - \nu\,\mathbb{E}_{\boldsymbol{x}\sim q}\log\big[1-\sigma(s(\boldsymbol{x}))\big],\quad
 s(\boldsymbol{x}) = G(\boldsymbol{x};\boldsymbol{\theta}) - \gamma - \log\nu q(\boldsymbol{x})$$

Its optimum is $\sigma(s) = \tilde p / (\tilde p + \nu q)$, i.e. $e^{G-\gamma} = \tilde p$: the fitted model is
normalised by itself ($\gamma \to \log Z(\boldsymbol{\theta})$) and the estimate is consistent, like the MLE.
The toy model here is log-linear on a finite vocabulary, $G(x;\boldsymbol{\theta}) = \boldsymbol{\theta}^\top\phi(x)$,
small enough that the exact $Z$ and the MLE can be computed for comparison.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from spaces_code import randomness


class LogLinearModel(nn.Module):
    """$G(x;\\theta) = \\theta^\\top\\phi(x)$ on states $0..V-1$ with features ``(V, k)``, plus a learned $\\gamma=\\log Z$."""

    def __init__(self, features: Tensor):
        super().__init__()
        self.register_buffer("features", features)
        self.theta = nn.Parameter(features.new_zeros(features.shape[-1]))
        self.log_z = nn.Parameter(features.new_zeros(()))  # gamma: only NCE uses it

    def energy(self, x: Tensor) -> Tensor:
        """$G(x;\\theta)$ for integer states ``(...)``."""
        return self.features[x] @ self.theta

    def exact_log_partition(self) -> Tensor:
        """$\\log Z(\\theta) = \\log\\sum_x e^{G(x;\\theta)}$, summed over the whole vocabulary."""
        return torch.logsumexp(self.features @ self.theta, dim=0)

    def exact_log_prob(self) -> Tensor:
        """$\\log p(x)$ ``(V,)`` with the exact normaliser."""
        energies = self.features @ self.theta
        return energies - torch.logsumexp(energies, dim=0)


def nce_logit(model: LogLinearModel, x: Tensor, log_noise_prob: Tensor, noise_ratio: float) -> Tensor:
    """$s(x) = G(x;\\theta) - \\gamma - \\log \\nu q(x)$ ``(...)``; ``log_noise_prob`` is $\\log q$ over all states ``(V,)``."""
    # $s(x) = G(x;\theta) - \gamma - \log\nu q(x)$
    return model.energy(x) - model.log_z - (math.log(noise_ratio) + log_noise_prob[x])


def nce_loss(model: LogLinearModel, data: Tensor, noise: Tensor, log_noise_prob: Tensor) -> Tensor:
    """Sample NCE loss for ``data`` ``(n,)`` and ``noise`` ``(m,)`` drawn from $q$; $\\nu = m/n$."""
    noise_ratio = noise.numel() / data.numel()
    # $-\log\sigma(s) = \mathrm{softplus}(-s)$ and $-\log(1-\sigma(s)) = \mathrm{softplus}(s)$;
    # $\nu\,\mathbb{E}_q$ over m = nu * n noise samples is their sum divided by n
    data_term = softplus(-nce_logit(model, data, log_noise_prob, noise_ratio)).sum()
    noise_term = softplus(nce_logit(model, noise, log_noise_prob, noise_ratio)).sum()
    return (data_term + noise_term) / data.numel()


def nce_expected_loss(model: LogLinearModel, data_prob: Tensor, log_noise_prob: Tensor, noise_ratio: float) -> Tensor:
    """The NCE objective with exact expectations over all states (infinite data and noise)."""
    states = torch.arange(data_prob.shape[0], device=data_prob.device)
    logit = nce_logit(model, states, log_noise_prob, noise_ratio)  # (V,)
    return (data_prob * softplus(-logit)).sum() + noise_ratio * (log_noise_prob.exp() * softplus(logit)).sum()


def mle_loss(model: LogLinearModel, data: Tensor) -> Tensor:
    """Negative log-likelihood with the exact normaliser (the reference NCE avoids computing)."""
    return model.exact_log_partition() - model.energy(data).mean()


def fit(model: nn.Module, loss_fn: Callable[[], Tensor], max_iter: int = 200) -> float:
    """Full-batch L-BFGS on a convex objective (both losses are convex in $(\\theta, \\gamma)$); returns the final loss."""
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=max_iter, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(loss_fn().detach())


def sample_states(log_prob: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` i.i.d. states ``(n,)`` from a distribution given by its log-probabilities ``(V,)``.

    Drawn on ``generator``'s device (a CPU generator gives the same states on any device) and returned
    on ``log_prob``'s device.
    """
    return randomness.multinomial(log_prob.exp(), n, replacement=True, generator=generator)
