r"""泛化性乱弹：从随机噪声、梯度惩罚到虚拟对抗训练 — https://kexue.fm/archives/7466

The second half of the article's chain (the first, noise as a penalty, is :mod:`spaces_code.noise_penalty`).
Papers: Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (arXiv:1412.6572), and Miyato
et al., "Virtual Adversarial Training" (arXiv:1704.03976).

Adversarial step. Moving the input by $\varepsilon$ along the normalised loss gradient raises the loss by

$$l\Big(x + \varepsilon\frac{\nabla_x l}{\Vert\nabla_x l\Vert}\Big) = l(x) + \varepsilon\Vert\nabla_x l(x)\Vert + O(\varepsilon^2),$$

so training on adversarial examples is, to first order, a gradient penalty $\varepsilon\Vert\nabla_x l\Vert$.

Virtual adversarial training. Without labels, the loss is the divergence between the model's own
predictions, $D(r) = \mathrm{KL}\big(p(\cdot|x)\,\Vert\,p(\cdot|x + r)\big)$. At $r = 0$ it is 0 and so is its
gradient, so $D(r)\approx\frac{1}{2}r^\top H r$ and the worst direction is the top eigenvector of
$H = \nabla_r^2 D(0)$, found by power iteration $d \leftarrow Hd/\Vert Hd\Vert$ (Miyato et al. use a finite
difference for $Hd$; here it is an exact Hessian-vector product).

Why noise and VAT act alike on a classifier, and a gradient penalty does not. For two classes with logit
margin $m = f_1 - f_0$, $p = \sigma(m)$ and label $y$, the cross-entropy $l$ has
$\nabla_x l = (p - y)\nabla_x m$ and

$$\mathrm{tr}\,\nabla_x^2 l = \underbrace{p(1-p)\Vert\nabla_x m\Vert^2}_{\text{Fisher term}}
  + \underbrace{(p - y)\,\Delta_x m}_{\text{residual term}},$$

so Gaussian noise adds $\frac{\sigma^2}{2}$ of this; near a fit ($p \to y$) the residual term vanishes and the
Fisher term is left. The KL Hessian of VAT is $H = p(1-p)\nabla_x m\nabla_x m^\top$ (rank one), whose top
eigenvalue is the same Fisher term: noise averages it over directions, VAT takes the worst one. The gradient
penalty $\Vert\nabla_x l\Vert^2 = (p-y)^2\Vert\nabla_x m\Vert^2$ is smaller by the factor $(p - y)^2 / p(1-p)$,
which goes to 0 at a confident fit (:func:`binary_noise_terms`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from spaces_code.randomness import init_parameters_, randn

Regulariser = Literal["none", "noise", "gradient_penalty", "vat"]


def input_gradient(loss_fn: Callable[[Tensor], Tensor], x: Tensor, create_graph: bool = False) -> Tensor:
    r"""$\nabla_x l$ per row of ``x`` (n, d); ``loss_fn`` maps (n, d) to per-row losses (n,)."""
    point = x if x.requires_grad else x.detach().requires_grad_(True)
    return torch.autograd.grad(loss_fn(point).sum(), point, create_graph=create_graph)[0]


def adversarial_step(loss_fn: Callable[[Tensor], Tensor], x: Tensor, eps: float) -> Tensor:
    r"""$x + \varepsilon\,\nabla_x l / \Vert\nabla_x l\Vert$ per row (n, d)."""
    grad = input_gradient(loss_fn, x)  # (n, d)
    # $x + \varepsilon\nabla_x l/\Vert\nabla_x l\Vert$
    return x.detach() + eps * nn.functional.normalize(grad, dim=-1)


def prediction_kl(logits_fn: Callable[[Tensor], Tensor], x: Tensor, r: Tensor) -> Tensor:
    r"""$D(r) = \mathrm{KL}(p(\cdot|x)\Vert p(\cdot|x+r))$ per row (n,), the clean prediction held fixed."""
    with torch.no_grad():
        clean = torch.log_softmax(logits_fn(x), -1)  # (n, C)
    moved = torch.log_softmax(logits_fn(x + r), -1)
    return (clean.exp() * (clean - moved)).sum(-1)


def kl_hessian_vector(logits_fn: Callable[[Tensor], Tensor], x: Tensor, d: Tensor) -> Tensor:
    r"""$H d$ per row, $H = \nabla_r^2 D(0)$ (exact double backward; rows are independent examples)."""
    r = torch.zeros_like(x, requires_grad=True)
    grad = torch.autograd.grad(prediction_kl(logits_fn, x, r).sum(), r, create_graph=True)[0]  # (n, d), 0 at r=0
    return torch.autograd.grad((grad * d).sum(), r)[0]


def vat_direction(logits_fn: Callable[[Tensor], Tensor], x: Tensor, n_iter: int = 1,
                  generator: torch.Generator | None = None) -> Tensor:
    r"""Unit rows (n, d): ``n_iter`` power iterations $d \leftarrow Hd/\Vert Hd\Vert$ from a random $d$."""
    d = nn.functional.normalize(randn(*x.shape, generator=generator, device=x.device, dtype=x.dtype), dim=-1)
    for _ in range(n_iter):
        # $d \leftarrow H d / \Vert H d\Vert$
        d = nn.functional.normalize(kl_hessian_vector(logits_fn, x, d), dim=-1)
    return d.detach()


class BinaryNoiseTerms(NamedTuple):
    fisher: Tensor  # $p(1-p)\Vert\nabla_x m\Vert^2$ (n,), also the top eigenvalue of VAT's KL Hessian
    residual: Tensor  # $(p - y)\Delta_x m$ (n,)
    gradient_penalty: Tensor  # $\Vert\nabla_x l\Vert^2 = (p - y)^2\Vert\nabla_x m\Vert^2$ (n,)


def binary_noise_terms(logits_fn: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> BinaryNoiseTerms:
    r"""The split of $\mathrm{tr}\,\nabla_x^2 l$ of a two-class cross-entropy, per row of ``x`` (n, d)."""
    point = x.detach().requires_grad_(True)
    logits = logits_fn(point)  # (n, 2)
    margin = logits[:, 1] - logits[:, 0]  # $m = f_1 - f_0$
    grad_m = torch.autograd.grad(margin.sum(), point, create_graph=True)[0]  # (n, d)
    # $\Delta_x m = \sum_i \partial^2 m / \partial x_i^2$, one backward per input dimension (rows independent)
    laplacian = sum(torch.autograd.grad(grad_m[:, i].sum(), point, retain_graph=True)[0][:, i]
                    for i in range(x.shape[-1]))
    p, grad_sq = torch.sigmoid(margin.detach()), grad_m.detach().square().sum(-1)
    residual = p - y.to(p.dtype)  # $p - y$
    # $\mathrm{tr}\,\nabla_x^2 l = p(1-p)\Vert\nabla_x m\Vert^2 + (p - y)\Delta_x m$
    return BinaryNoiseTerms(p * (1 - p) * grad_sq, residual * laplacian.detach(), residual.square() * grad_sq)


class Classifier(nn.Module):
    """A small tanh MLP classifier (smooth, so that input Hessians exist), weights from ``generator``."""

    def __init__(self, in_dim: int = 2, hidden: int = 64, n_classes: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, n_classes))
        init_parameters_(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (n, C)


@dataclass
class TrainConfig:
    regulariser: Regulariser = "none"
    strength: float = 0.1  # sigma of the noise; lambda of the penalty; epsilon of VAT
    steps: int = 500
    lr: float = 1e-2


def regularised_loss(model: nn.Module, x: Tensor, y: Tensor, config: TrainConfig,
                     generator: torch.Generator | None = None) -> Tensor:
    """Cross-entropy with the configured regulariser (noise replaces the inputs; the others are added)."""
    ce = nn.functional.cross_entropy
    if config.regulariser == "noise":
        # $\mathbb{E}_\varepsilon\, l(x + \varepsilon)$, one draw per step
        return ce(model(x + config.strength * randn(*x.shape, generator=generator, device=x.device,
                                                    dtype=x.dtype)), y)
    loss = ce(model(x), y)
    if config.regulariser == "gradient_penalty":
        grad = input_gradient(lambda z: ce(model(z), y, reduction="none"), x, create_graph=True)
        # $l + \lambda\Vert\nabla_x l\Vert^2$
        return loss + config.strength * grad.square().sum(-1).mean()
    if config.regulariser == "vat":
        d = vat_direction(model, x, n_iter=1, generator=generator)
        # $l + \mathrm{KL}(p(\cdot|x)\Vert p(\cdot|x + \varepsilon d))$
        return loss + prediction_kl(model, x, config.strength * d).mean()
    if config.regulariser != "none":
        raise ValueError(f"unknown regulariser {config.regulariser!r}")
    return loss


def train_classifier(model: nn.Module, x: Tensor, y: Tensor, config: TrainConfig,
                     generator: torch.Generator | None = None) -> list[float]:
    """Full-batch Adam on :func:`regularised_loss`; returns the loss per step."""
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = []
    for _ in range(config.steps):
        loss = regularised_loss(model, x, y, config, generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


def two_moons(n: int, noise: float = 0.2, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The two interleaved half circles, ``n`` points (n, 2) with labels (n,), Gaussian noise ``noise``."""
    label = torch.arange(n) % 2
    angle = torch.pi * torch.rand(n, generator=generator)
    # label 0: (cos a, sin a); label 1: (1 - cos a, 1/2 - sin a)
    sign = 1 - 2 * label
    x = torch.stack([label + sign * torch.cos(angle), 0.5 * label + sign * torch.sin(angle)], -1)
    return x + noise * torch.randn(n, 2, generator=generator), label
