r"""从动力学角度看优化算法（七）：SGD ≈ SVM？ — https://kexue.fm/archives/8009

Paper: P. Domingos, "Every Model Learned by Gradient Descent Is Approximately a Kernel Machine"
(arXiv:2012.00152, 2020).

Gradient descent on $L(\theta) = \frac{1}{n}\sum_i l(y_i, f(x_i;\theta))$ moves the prediction at any $x$ by

$$f(x;\theta_{t+1}) - f(x;\theta_t) \approx \nabla_\theta f(x;\theta_t)\cdot(\theta_{t+1} - \theta_t)
= -\eta\sum_i \frac{1}{n}\frac{\partial l}{\partial f}(y_i, f(x_i;\theta_t))\,K_t(x, x_i),$$

with the tangent kernel $K_t(x, x') = \nabla_\theta f(x;\theta_t)\cdot\nabla_\theta f(x';\theta_t)$. Summing over
the trajectory gives the kernel-machine form of the trained model

$$f(x;\theta_T) \approx f(x;\theta_0) - \eta\sum_{t=0}^{T-1}\sum_i \frac{1}{n}
\frac{\partial l}{\partial f}\Big|_{i,t} K_t(x, x_i),\qquad K^{p}(x, x') = \eta\sum_t K_t(x, x'),$$

$K^p$ being the path kernel (the discrete version of $\int K_t\,dt$). Each step's first-order
approximation is off by $O(\eta^2)$, so the total error shrinks like $O(\eta)$ at a fixed $\eta T$.

Here $l = \frac{1}{2}(f - y)^2$ and $f$ is a small tanh MLP written as a function of its parameters, so that
the per-example gradients $\nabla_\theta f(x_i)$ come from one backward pass with per-example parameter copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from spaces_code.randomness import randn


@dataclass
class MLPConfig:
    in_dim: int = 1
    hidden: int = 64
    depth: int = 2  # hidden tanh layers


def init_params(config: MLPConfig, generator: torch.Generator | None = None,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> list[Tensor]:
    r"""[W_1, b_1, ..., W_L, b_L] with $W\sim\mathcal{N}(0, 1/\text{fan-in})$, $b\sim\mathcal{N}(0, 0.1^2)$.

    Drawn on the generator's device and moved to ``device`` (default: the generator's device)."""
    dims = [config.in_dim] + [config.hidden] * config.depth + [1]
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        params.append(randn(fan_out, fan_in, generator=generator, device=device, dtype=dtype) / fan_in ** 0.5)
        params.append(0.1 * randn(fan_out, generator=generator, device=device, dtype=dtype))
    return params


def mlp(params: list[Tensor], x: Tensor) -> Tensor:
    r"""$f(x;\theta)$ for inputs (N, d) -> (N,). Parameters are shared, or per example with a leading N."""
    h = x  # (N, d)
    for layer in range(0, len(params), 2):
        w, b = params[layer], params[layer + 1]
        h = torch.einsum("nij,nj->ni", w, h) + b if w.dim() == 3 else h @ w.T + b  # (N, fan_out)
        if layer + 2 < len(params):
            h = torch.tanh(h)
    return h.squeeze(-1)


def per_example_gradients(params: list[Tensor], x: Tensor) -> Tensor:
    r"""$\nabla_\theta f(x_i;\theta)$ for every row of ``x``, flattened: (N, P)."""
    copies = [p.detach().expand(x.shape[0], *p.shape).clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        grads = torch.autograd.grad(mlp(copies, x).sum(), copies)  # example i only touches copy i
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads], dim=1)


class PathKernelRun(NamedTuple):
    initial: Tensor  # $f(x;\theta_0)$ at the query points (M,)
    trained: Tensor  # $f(x;\theta_T)$ (M,)
    kernel_machine: Tensor  # the kernel-machine form above (M,)
    path_kernel: Tensor  # $K^p(x, x_i) = \eta\sum_t K_t(x, x_i)$ (M, n)
    train_loss: Tensor  # $L(\theta_t)$ for t = 0..T-1 (T,)
    params: list[Tensor]  # $\theta_T$


def train_with_path_kernel(params: list[Tensor], x_train: Tensor, y_train: Tensor, x_query: Tensor,
                           lr: float, steps: int) -> PathKernelRun:
    r"""Full-batch GD on $\frac{1}{2n}\sum_i (f(x_i) - y_i)^2$, accumulating the tangent kernels on the way."""
    n = x_train.shape[0]
    params = [p.detach().clone() for p in params]
    initial = mlp(params, x_query)
    kernel_machine = initial.clone()
    path_kernel = torch.zeros(x_query.shape[0], n, dtype=initial.dtype, device=initial.device)
    losses = []
    for _ in range(steps):
        j_train = per_example_gradients(params, x_train)  # (n, P)
        j_query = per_example_gradients(params, x_query)  # (M, P)
        residual = mlp(params, x_train) - y_train  # (n,)
        losses.append(0.5 * residual.pow(2).mean())
        dl_df = residual / n  # $\frac{1}{n}\partial l/\partial f$ (n,)
        # $K_t(x, x_i) = \nabla_\theta f(x)\cdot\nabla_\theta f(x_i)$
        kernel = j_query @ j_train.T  # (M, n)
        # $f \mathrel{-}= \eta\sum_i \frac{1}{n}\frac{\partial l}{\partial f_i} K_t(x, x_i)$
        kernel_machine = kernel_machine - lr * kernel @ dl_df
        path_kernel = path_kernel + lr * kernel
        # $\theta \leftarrow \theta - \eta\nabla_\theta L
        #   = \theta - \eta\sum_i \frac{1}{n}\frac{\partial l}{\partial f_i}\nabla_\theta f(x_i)$
        step = lr * (dl_df @ j_train)  # (P,)
        offset = 0
        for k, p in enumerate(params):
            params[k] = p - step[offset: offset + p.numel()].view_as(p)
            offset += p.numel()
    return PathKernelRun(initial, mlp(params, x_query), kernel_machine, path_kernel, torch.stack(losses), params)
