r"""BN究竟起了什么作用？一个闭门造车的分析 — https://kexue.fm/archives/6992

Paper: S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, "How Does Batch Normalization Help Optimization?"
(NeurIPS 2018, arXiv:1805.11604).

The claim the article re-derives: BN makes the loss landscape smoother, i.e. the gradient changes less
when we move, so larger steps are safe. With $L$-smoothness
$\Vert\nabla_\theta L(\theta + \Delta\theta) - \nabla_\theta L(\theta)\Vert \le L\Vert\Delta\theta\Vert$, a step
$\Delta\theta = -\eta\nabla_\theta L$ decreases the loss by at least
$\eta\left(1 - \frac{1}{2}L\eta\right)\Vert\nabla_\theta L\Vert^2$: a smaller $L$ allows a larger $\eta$.

Santurkar et al.'s measurements, at each training step $\theta$ with gradient $g = \nabla L(\theta)$, along
$\theta_\eta = \theta - \eta g$ for a range of $\eta$:

- loss variation: $L(\theta_\eta)$ over the range;
- gradient predictiveness: $\Vert\nabla L(\theta_\eta) - g\Vert$;
- effective $\beta$-smoothness: $\max_\eta \Vert\nabla L(\theta_\eta) - g\Vert / \Vert\theta_\eta - \theta\Vert$.

BN uses the statistics of the (full) batch throughout, in training mode.

The article's own argument isolates the centring: for a layer $\boldsymbol{y} = W\boldsymbol{x}$ trained on the
squared loss, the Lipschitz constant of the gradient grows with $\mathbb{E}\Vert\boldsymbol{x}\Vert^2 =
\Vert\mathbb{E}\boldsymbol{x}\Vert^2 + \mathrm{tr}\,\mathrm{Cov}\,\boldsymbol{x}$, and subtracting the mean removes the first
term. Centring after a linear layer does the same to its input, $W\boldsymbol{x}_i - W\boldsymbol{\mu}_B =
W(\boldsymbol{x}_i - \boldsymbol{\mu}_B)$: a network that centres its pre-activations never sees an input offset.
``MLPConfig.normalization`` ablates BN into ``center`` ($x - \mu_B$ only), ``scale``
($x / \sigma_B$ only) and ``bn`` (both), each followed by BN's affine $\gamma, \beta$;
:func:`top_hessian_eigenvalue` measures the sharpness $\lambda_{\max}(\nabla^2_\theta L)$ by power iteration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from spaces_code.randomness import randn

Normalization = Literal["none", "center", "scale", "bn"]


@dataclass
class MLPConfig:
    in_dim: int = 20
    width: int = 64
    depth: int = 6  # hidden layers
    n_classes: int = 5
    batch_norm: bool = False  # BN after every hidden Linear, before the ReLU (= normalization "bn")
    normalization: Normalization = "none"  # the ablation: "center", "scale" or "bn" after every hidden Linear

    @property
    def norm(self) -> Normalization:
        return "bn" if self.batch_norm else self.normalization


class BatchStandardize(nn.Module):
    r"""$\gamma \odot (x - \mu_B) / \sqrt{\sigma_B^2 + \epsilon} + \beta$, either step switchable (batch statistics)."""

    def __init__(self, features: int, center: bool, scale: bool, eps: float = 1e-5,
                 device: torch.device | str | None = None):
        super().__init__()
        self.center, self.scale, self.eps = center, scale, eps
        self.weight = nn.Parameter(torch.ones(features, device=device))  # gamma
        self.bias = nn.Parameter(torch.zeros(features, device=device))  # beta

    def forward(self, x: Tensor) -> Tensor:  # (batch, features)
        mean = x.mean(0)
        # $\sigma_B^2$: the biased batch variance, as BatchNorm1d uses in training
        std = ((x - mean).square().mean(0) + self.eps).sqrt()
        if self.center:
            x = x - mean  # $x - \mu_B$
        if self.scale:
            x = x / std  # $x / \sqrt{\sigma_B^2 + \epsilon}$
        return self.weight * x + self.bias


class MLP(nn.Module):
    """Linear -> [normalisation] -> ReLU, ``depth`` times, then a Linear classifier; He initialisation drawn
    from ``generator`` (on its device, then moved to ``device``)."""

    def __init__(self, config: MLPConfig, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        dims = [config.in_dim] + [config.width] * config.depth
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            layers.append(nn.Linear(fan_in, fan_out, device=device))
            if config.norm == "bn" and config.batch_norm:
                layers.append(nn.BatchNorm1d(fan_out, device=device))
            elif config.norm != "none":
                layers.append(BatchStandardize(fan_out, center=config.norm in ("center", "bn"),
                                               scale=config.norm in ("scale", "bn"), device=device))
            layers.append(nn.ReLU())
        layers.append(nn.Linear(dims[-1], config.n_classes, device=device))
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                with torch.no_grad():
                    # He: $W \sim \mathcal{N}(0, 2/\text{fan-in})$
                    layer.weight.copy_(randn(*layer.weight.shape, generator=generator, device=layer.weight.device)
                                       * (2 / layer.in_features) ** 0.5)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (batch, n_classes)


def loss_and_gradient(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy on the full batch and its gradient flattened over all parameters (P,)."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), torch.cat([g.reshape(-1) for g in grads])


def _add_to_parameters(model: nn.Module, flat: Tensor) -> None:
    r"""$\theta \leftarrow \theta + \Delta$ for a flat update (P,) in ``model.parameters()`` order."""
    with torch.no_grad():
        offset = 0
        for p in model.parameters():
            p += flat[offset: offset + p.numel()].view_as(p)
            offset += p.numel()


class LandscapeProbe(NamedTuple):
    losses: Tensor  # $L(\theta - \eta g)$ for each step size (S,)
    gradient_changes: Tensor  # $\Vert\nabla L(\theta - \eta g) - g\Vert$ (S,)
    effective_smoothness: Tensor  # $\max_\eta \Vert\nabla L(\theta_\eta) - g\Vert / (\eta\Vert g\Vert)$


def probe_along_gradient(model: nn.Module, x: Tensor, y: Tensor, step_sizes: Tensor) -> LandscapeProbe:
    r"""$L$ and $\nabla L$ at $\theta - \eta g$ for each $\eta$ in ``step_sizes`` (S,); $\theta$ is restored."""
    _, g = loss_and_gradient(model, x, y)  # (P,)
    originals = [p.detach().clone() for p in model.parameters()]
    losses, changes = [], []
    for eta in step_sizes.tolist():
        # $\theta_\eta = \theta - \eta g$
        _add_to_parameters(model, -eta * g)
        loss, g_eta = loss_and_gradient(model, x, y)
        with torch.no_grad():  # restore theta exactly
            for p, original in zip(model.parameters(), originals):
                p.copy_(original)
        losses.append(loss)
        changes.append(torch.linalg.vector_norm(g_eta - g))
    changes_t = torch.stack(changes)
    # $\Vert\nabla L(\theta_\eta) - \nabla L(\theta)\Vert / \Vert\theta_\eta - \theta\Vert$
    ratios = changes_t / (step_sizes.to(changes_t) * torch.linalg.vector_norm(g))
    return LandscapeProbe(torch.stack(losses), changes_t, ratios.max())


class TrainingRecord(NamedTuple):
    train_loss: Tensor  # (steps,)
    probe_steps: Tensor  # training steps at which the landscape was probed (n_probes,)
    probe_losses: Tensor  # $L(\theta_\eta)$ (n_probes, S)
    probe_gradient_changes: Tensor  # $\Vert\nabla L(\theta_\eta) - g\Vert$ (n_probes, S)
    effective_smoothness: Tensor  # (n_probes,)

    @property
    def loss_range(self) -> Tensor:
        r"""Loss variation along the gradient: $\max_\eta L(\theta_\eta) - \min_\eta L(\theta_\eta)$ per probe."""
        return self.probe_losses.amax(-1) - self.probe_losses.amin(-1)


def train_and_probe(model: nn.Module, x: Tensor, y: Tensor, lr: float, steps: int, probe_every: int,
                    step_sizes: Tensor) -> TrainingRecord:
    """Full-batch gradient descent with learning rate ``lr``; every ``probe_every`` steps, probe the landscape."""
    model.train()
    losses, probes = [], []
    for step in range(steps):
        if step % probe_every == 0:
            probes.append(probe_along_gradient(model, x, y, step_sizes))
        loss, g = loss_and_gradient(model, x, y)
        # plain gradient descent $\theta \leftarrow \theta - \eta_{\mathrm{lr}} g$
        _add_to_parameters(model, -lr * g)
        losses.append(loss)
    return TrainingRecord(torch.stack(losses), torch.arange(0, steps, probe_every),
                          torch.stack([p.losses for p in probes]),
                          torch.stack([p.gradient_changes for p in probes]),
                          torch.stack([p.effective_smoothness for p in probes]))


def top_hessian_eigenvalue(model: nn.Module, x: Tensor, y: Tensor, iters: int = 30,
                           generator: torch.Generator | None = None) -> Tensor:
    r"""$\lambda_{\max}(\nabla_\theta^2 L)$ by power iteration on exact Hessian-vector products (the largest
    eigenvalue in absolute value, signed)."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])  # (P,)
    v = randn(flat.numel(), generator=generator, device=flat.device, dtype=flat.dtype)
    v = v / v.norm()
    eigenvalue = flat.new_zeros(())
    for _ in range(iters):
        hv = torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ v, params, retain_graph=True)])
        eigenvalue = v @ hv  # Rayleigh quotient $v^\top H v$
        v = hv / hv.norm()
    return eigenvalue.detach()


def make_teacher_data(n: int, config: MLPConfig, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None, offset: float = 3.0) -> tuple[Tensor, Tensor]:
    r"""Inputs with a common offset and feature scales from 0.1 to 10 (badly conditioned, as raw features
    often are), labelled by the argmax of a random linear teacher on the standardised features."""
    z = randn(n, config.in_dim, generator=generator, device=device)  # (n, in_dim)
    scales = torch.logspace(-1, 1, config.in_dim, device=z.device)
    teacher = randn(config.in_dim, config.n_classes, generator=generator, device=z.device)
    return offset + z * scales, (z @ teacher).argmax(-1)
