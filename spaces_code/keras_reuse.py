r"""“让Keras更酷一些！”：层与模型的重用技巧 — https://kexue.fm/archives/6985

Keras functional API (F. Chollet, *Keras*, 2015; Keras 3 runs on JAX, TensorFlow or PyTorch). Here
Keras 3 runs on the PyTorch backend.

Layer reuse: one ``Dense`` layer is created once and called three times, so the three calls share a
single kernel $W$ and bias $b$ (updated together in training):

$$ f(x) = \mathrm{relu}(xW + b), \qquad y = f(f(f(x))). $$

The PyTorch equivalent is one ``nn.Linear`` applied three times in ``forward``; ``nn.Linear`` stores
``weight`` $= W^\top$ (shape ``(out, in)``) where Keras stores ``kernel`` $= W$ (shape ``(in, out)``).

This module needs ``KERAS_BACKEND=torch``: it sets it when Keras has not been imported yet and checks
it otherwise (the backend is fixed at Keras' first import).
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402  (the backend must be chosen before this import)
import torch  # noqa: E402
from torch import nn  # noqa: E402

if keras.backend.backend() != "torch":
    raise ImportError(f"spaces_code.keras_reuse needs KERAS_BACKEND=torch, Keras runs on "
                      f"{keras.backend.backend()!r}: set the variable before importing keras")


def reused_dense_model(dim: int = 784, times: int = 3,
                       activation: str = "relu") -> tuple[keras.Model, keras.layers.Dense]:
    """The article's construction: ``Input(shape=(dim,))`` and one ``Dense(dim)`` called ``times`` times.

    Returns ``(model, layer)``; ``model.weights`` holds the layer's kernel and bias once each.
    Variables are created on Keras' current device (``keras.device(...)`` scope or its default).
    """
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    x_in = keras.Input(shape=(dim,))
    layer = keras.layers.Dense(dim, activation=activation)  # created once
    x = x_in
    for _ in range(times):
        # $x \leftarrow f(x) = \mathrm{relu}(xW + b)$, the same $W, b$ at every call
        x = layer(x)
    return keras.Model(x_in, x), layer


def distinct_weights(model: keras.Model) -> int:
    """How many distinct weight tensors the model owns (a shared layer counts once)."""
    return len({id(weight.value) for weight in model.weights})


class ReusedLinear(nn.Module):
    """PyTorch form of the reused layer: one ``nn.Linear`` applied ``times`` times."""

    def __init__(self, dim: int, times: int = 3):
        super().__init__()
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.linear = nn.Linear(dim, dim)  # one weight set, like the stored Keras layer
        self.times = times

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
        module = cls(kernel.shape[0], times).to(device=kernel.device, dtype=kernel.dtype)
        with torch.no_grad():
            module.linear.weight.copy_(kernel.T)  # (out, in) = W^T
            module.linear.bias.copy_(bias)
        return module
