r"""“让Keras更酷一些！”：层与模型的重用技巧 — https://kexue.fm/archives/6985

Keras functional API (F. Chollet, *Keras*, 2015; Keras 3 runs on JAX, TensorFlow or PyTorch). Here
Keras 3 runs on the PyTorch backend.

Layer reuse: one ``Dense`` layer is created once and called three times, so the three calls share a
single kernel $W$ and bias $b$ (updated together in training):

$$ f(x) = \mathrm{relu}(xW + b), \qquad y = f(f(f(x))). $$

The PyTorch equivalent is one ``nn.Linear`` applied three times in ``forward``; ``nn.Linear`` stores
``weight`` $= W^\top$ (shape ``(out, in)``) where Keras stores ``kernel`` $= W$ (shape ``(in, out)``).

Because the calls share $W$, its gradient is the sum of the three per-call gradients,

$$ \frac{\partial L}{\partial W} = \sum_{k=1}^{3} \frac{\partial L}{\partial W_k}\Big|_{W_1=W_2=W_3=W}, $$

where $W_k$ is the weight seen by the $k$-th call (:func:`per_call_kernel_gradients` computes the right
side by giving each call its own copy). A model with one copy per call would update each copy with one
term only.

This module needs ``KERAS_BACKEND=torch``: it sets it when Keras has not been imported yet and checks
it otherwise (the backend is fixed at Keras' first import).
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402  (the backend must be chosen before this import)
import torch  # noqa: E402
from torch import nn  # noqa: E402

from spaces_code.keras_portable import require_backend  # noqa: E402
from spaces_code.randomness import generator_device, init_parameters_  # noqa: E402

require_backend("torch", __name__)


def reused_dense_model(dim: int = 784, times: int = 3, activation: str = "relu",
                       seed: int | None = None) -> tuple[keras.Model, keras.layers.Dense]:
    """The article's construction: ``Input(shape=(dim,))`` and one ``Dense(dim)`` called ``times`` times.

    Returns ``(model, layer)``; ``model.weights`` holds the layer's kernel and bias once each.
    Variables are created on Keras' current device (``keras.device(...)`` scope or its default).
    ``seed`` seeds the kernel's Glorot-uniform initialiser (``None``: Keras' global seed).
    """
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    x_in = keras.Input(shape=(dim,))
    kernel_init = "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(seed=seed)
    layer = keras.layers.Dense(dim, activation=activation, kernel_initializer=kernel_init)  # created once
    x = x_in
    for _ in range(times):
        # $x \leftarrow f(x) = \mathrm{relu}(xW + b)$, the same $W, b$ at every call
        x = layer(x)
    return keras.Model(x_in, x), layer


def distinct_weights(model: keras.Model) -> int:
    """How many distinct weight tensors the model owns (a shared layer counts once)."""
    return len({id(weight.value) for weight in model.weights})


def per_call_kernel_gradients(layer: keras.layers.Dense, x: torch.Tensor, target: torch.Tensor,
                              times: int = 3) -> torch.Tensor:
    r"""$\partial L/\partial W_k$ ``(times, in, out)`` of $L = \mathrm{mean}((y - \text{target})^2)$
    when call $k$ of the reused layer gets its own copy $W_k$ of the kernel (all equal to $W$).

    Recomputes the model of :func:`reused_dense_model` with the layer's activation, in torch.
    """
    kernel = layer.kernel.value.detach()  # (in, out)
    bias = layer.bias.value.detach()  # (out,)
    copies = kernel.expand(times, *kernel.shape).clone().requires_grad_(True)  # (times, in, out)
    y = x
    for k in range(times):
        y = layer.activation(y @ copies[k] + bias)
    loss = (y - target).pow(2).mean()
    return torch.autograd.grad(loss, copies)[0]


class ReusedLinear(nn.Module):
    """PyTorch form of the reused layer: one ``nn.Linear`` applied ``times`` times.

    Its weight and bias are drawn from ``generator`` (PyTorch's default initialisation), on the
    generator's device; :meth:`from_keras` copies a Keras layer's instead.
    """

    def __init__(self, dim: int, times: int = 3, generator: torch.Generator | None = None):
        super().__init__()
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        # one weight set, like the stored Keras layer; built empty on the generator's device (no draw
        # from the global RNG), then drawn from ``generator`` with PyTorch's default initialisation
        self.linear = nn.Linear(dim, dim, device="meta").to_empty(device=generator_device(generator))
        self.times = times
        init_parameters_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, dim) -> (batch, dim)
        for _ in range(self.times):
            # $f(x) = \mathrm{relu}(xW + b)$ with $W$ = ``linear.weight.T``
            x = torch.relu(self.linear(x))
        return x

    @classmethod
    def from_keras(cls, layer: keras.layers.Dense, times: int = 3) -> "ReusedLinear":
        """Copy a built Keras ``Dense`` (relu) into a new module on the layer's device and dtype."""
        if layer.activation is not keras.activations.relu:
            raise ValueError("ReusedLinear applies relu: the Keras layer must use activation='relu'")
        kernel = layer.kernel.value.detach()  # (in, out)
        bias = layer.bias.value.detach()  # (out,)
        # a throwaway generator: every parameter is overwritten below, nothing drawn is kept
        module = cls(kernel.shape[0], times, torch.Generator()).to(device=kernel.device, dtype=kernel.dtype)
        with torch.no_grad():
            module.linear.weight.copy_(kernel.T)  # (out, in) = W^T
            module.linear.bias.copy_(bias)
        return module
