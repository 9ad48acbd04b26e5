r"""WGAN的成功，可能跟Wasserstein距离没啥关系 — https://kexue.fm/archives/8244

Three ways to train the same toy generator, to test the article's claim (after Stanczuk et al., 2021) that
a better estimate of $W_1$ does not make a better generator. Target $p = \mathcal{N}(0, 1)$, generator
$g_\theta(z) = a z + b$, $z\sim\mathcal{N}(0, 1)$, so that the true distance has a closed form
(quantile coupling, $c = |1 - |a||$):

$$W_1\big(\mathcal{N}(0, 1), \mathcal{N}(b, a^2)\big) = \mathbb{E}\,|c z - b|
  = c\sqrt{2/\pi}\,e^{-b^2/2c^2} + b\,\mathrm{erf}\big(b/\sqrt{2}c\big).$$

Each generator step sees the same data: ``n_critic`` pairs of batches of $B$ real and $B$ generated samples,
and ways 1 and 3 then draw ``n_critic`` $\times B$ fresh generated samples for the generator's own step.

1. ``"wgan-gp"``: a one-hidden-layer ReLU critic $f(x) = \sum_k v_k\,\mathrm{relu}(w_k x + c_k)$, one Adam
   step on each batch pair for $-(\mathbb{E}_p f - \mathbb{E}_q f) + \lambda\,\mathbb{E}(|f'(\hat x)| - 1)^2$,
   then one generator step on fresh noise for $-\mathbb{E} f(g_\theta(z))$ (Gulrajani et al.).
2. ``"batch-w1"``: the exact batch distance $W_1(\hat p_B, \hat q_B)$ from sorted samples as the loss.
3. ``"converged-critic"``: on each batch pair the critic is trained to convergence; in one dimension its
   limit is known, the batch's Kantorovich potential $f^*_B$ (``kantorovich_potential_1d``), whose value
   is the same exact $W_1(\hat p_B, \hat q_B)$ as in 2. The generator then steps on fresh noise for
   $-\mathbb{E} f^*_B(g_\theta(z))$, as in 1.

Ways 2 and 3 carry the exact batch $W_1$; way 1's critic value is a poor estimate of any $W_1$. Yet 2 ends
far from the target (differentiated through its own batch's sorted matching, it shrinks $a$ to $a^*(B) < 1$)
while 1 and 3 end close: the quality of the estimate does not order the generators. (That 3 is no worse
than 1 is where this 1-D toy stops agreeing with the paper, which finds exact critics worse.) All runs of a
call are trained at once, as independent problems along a leading ``runs`` dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from spaces_code.randomness import generator_device, rand, randn
from spaces_code.wgan import kantorovich_potential_1d, wasserstein1_1d

METHODS = ("wgan-gp", "batch-w1", "converged-critic")


def true_w1_to_standard_normal(scale: Tensor, shift: Tensor) -> Tensor:
    r"""$W_1(\mathcal{N}(0, 1), \mathcal{N}(b, a^2))$ in closed form, elementwise."""
    c = (1 - scale.abs()).abs()
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    # $c\sqrt{2/\pi}\,e^{-b^2/2c^2} + b\,\mathrm{erf}(b/\sqrt{2}c)$, the mean of $|\mathcal{N}(b, c^2)|$
    folded = (c * math.sqrt(2 / math.pi) * torch.exp(-shift.square() / (2 * safe_c.square()))
              + shift * torch.erf(shift / (math.sqrt(2) * safe_c)))
    return torch.where(c > 0, folded, shift.abs())


def relu_critic(x: Tensor, w: Tensor, c: Tensor, v: Tensor) -> Tensor:
    r"""$f(x) = \sum_k v_k\,\mathrm{relu}(w_k x + c_k)$ for ``x`` (runs, n) and parameters (runs, hidden)."""
    return (torch.relu(x[..., None] * w[:, None] + c[:, None]) * v[:, None]).sum(-1)  # (runs, n)


def relu_critic_slope(x: Tensor, w: Tensor, c: Tensor, v: Tensor) -> Tensor:
    r"""$f'(x) = \sum_k v_k w_k\,[w_k x + c_k > 0]$, the derivative autograd would give, without a double backward."""
    return ((x[..., None] * w[:, None] + c[:, None] > 0).to(x.dtype) * (v * w)[:, None]).sum(-1)


@dataclass
class TrainConfig:
    batch: int = 4  # B: real and generated samples in each batch
    steps: int = 150  # generator steps
    n_critic: int = 5  # batch pairs per generator step (critic steps of WGAN-GP)
    penalty: float = 0.1  # lambda of the gradient penalty (with 10, as in the paper, b oscillates here)
    lr_critic: float = 5e-2  # Adam, betas (0.5, 0.9)
    lr_gen: float = 2e-2  # Adam, betas (0.5, 0.9), decayed as 1 / sqrt(1 + t / 20)
    hidden: int = 32  # ReLU units of the WGAN-GP critic
    scale: float = 0.3  # the generator starts at a = 0.3, b = 1 (true W1 ~ 1.05)
    shift: float = 1.0


class Training(NamedTuple):
    scale: Tensor  # $a$ (steps + 1, runs)
    shift: Tensor  # $b$ (steps + 1, runs)
    estimate: Tensor  # the critic's value $\mathbb{E}_p f - \mathbb{E}_q f$ at each step, batch mean (steps, runs)

    @property
    def true_w1(self) -> Tensor:  # (steps + 1, runs)
        return true_w1_to_standard_normal(self.scale, self.shift)


def _adam(params: list[Tensor], lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))


def train_generators(method: str, runs: int, config: TrainConfig = TrainConfig(),
                     generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Training:
    r"""Train ``runs`` independent generators $g(z) = az + b$ towards $\mathcal{N}(0, 1)$ by ``method`` (float64).

    Random numbers are drawn on ``generator``'s device and moved to ``device`` (default: the same).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    cfg, f64 = config, torch.float64
    device = generator_device(generator) if device is None else torch.device(device)

    def draw(*shape: int) -> Tensor:
        return randn(*shape, generator=generator, device=device, dtype=f64)

    def uniform(*shape: int) -> Tensor:
        return rand(*shape, generator=generator, device=device, dtype=f64)

    theta = torch.tensor([cfg.scale, cfg.shift], dtype=f64, device=device).repeat(runs, 1)  # (runs, 2): a, b
    theta.requires_grad_(True)
    opt = _adam([theta], cfg.lr_gen)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / math.sqrt(1 + t / 20))
    if method == "wgan-gp":  # nn.Linear's default init, one critic per run; rows w, c, v of (runs, 3, hidden)
        bounds = torch.tensor([1.0, 1.0, 1 / math.sqrt(cfg.hidden)], dtype=f64, device=device)[:, None]
        critic = ((2 * uniform(runs, 3, cfg.hidden) - 1) * bounds).requires_grad_(True)
        critic_opt = _adam([critic], cfg.lr_critic)
    scales, shifts, estimates = [theta[:, 0].detach().clone()], [theta[:, 1].detach().clone()], []
    for _ in range(cfg.steps):
        real = draw(runs, cfg.n_critic, cfg.batch)  # (runs, K, B)
        fake = theta[:, :1, None] * draw(runs, cfg.n_critic, cfg.batch) + theta[:, 1:, None]  # g(z)
        if method == "wgan-gp":
            eps = uniform(runs, cfg.n_critic, cfg.batch)
            # $\hat x = \epsilon x_{real} + (1 - \epsilon) x_{fake}$
            x_hat = eps * real + (1 - eps) * fake.detach()
            values = []
            for k in range(cfg.n_critic):  # one critic step per batch pair
                w, c, v = critic.unbind(1)
                f = relu_critic(torch.cat([real[:, k], fake[:, k].detach()], -1), w, c, v)  # (runs, 2B)
                gap = f[:, :cfg.batch].mean(-1) - f[:, cfg.batch:].mean(-1)  # (runs,)
                # $\lambda\,\mathbb{E}(|f'(\hat x)| - 1)^2$
                penalty = (relu_critic_slope(x_hat[:, k], w, c, v).abs() - 1).square().mean(-1)
                critic_opt.zero_grad()
                (cfg.penalty * penalty - gap).sum().backward()
                critic_opt.step()
                values.append(gap.detach())
            estimate = torch.stack(values).mean(0)
            w, c, v = critic.detach().unbind(1)
            fresh = theta[:, :1] * draw(runs, cfg.n_critic * cfg.batch) + theta[:, 1:]  # as many as in way 3
            loss = -relu_critic(fresh, w, c, v).mean(-1)
        elif method == "batch-w1":
            # the exact $W_1(\hat p_B, \hat q_B)$ of each batch pair, differentiated through the sorted samples
            estimate = wasserstein1_1d(real, fake).mean(-1)  # (runs,)
            loss = estimate
        else:
            # the converged critic of each batch pair, applied to fresh generated samples
            estimate = wasserstein1_1d(real, fake).mean(-1)
            fresh = theta[:, :1, None] * draw(runs, cfg.n_critic, cfg.batch) + theta[:, 1:, None]
            loss = -kantorovich_potential_1d(real, fake.detach(), fresh).mean((-1, -2))
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        sched.step()
        scales.append(theta[:, 0].detach().clone())
        shifts.append(theta[:, 1].detach().clone())
        estimates.append(estimate.detach())
    return Training(torch.stack(scales), torch.stack(shifts), torch.stack(estimates))
