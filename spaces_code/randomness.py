r"""Explicit randomness for the library: draw on the generator's device, then move the result.

Every library function or constructor that draws random numbers takes ``generator``. A CPU
``torch.Generator`` cannot draw straight into a CUDA tensor, and a CUDA generator produces other numbers
than a CPU one with the same seed. So the library draws on the generator's own device and then moves the
result to the device the computation runs on: with a CPU generator, a GPU build shows the very numbers a
CPU build shows, and a test can run the same inputs on every device and compare.

Functions that create tensors default their device to the generator's device.

Constructors (``nn.Module``) build their layers as usual and then call :func:`init_parameters_` with
their ``generator``: every parameter is re-drawn from it with PyTorch's own default initialisation,
so the weights depend on the generator alone, never on the global RNG.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def generator_device(generator: torch.Generator | None) -> torch.device:
    """The device a generator draws on (CPU when there is none: the global CPU generator)."""
    return torch.device("cpu") if generator is None else generator.device


def _target(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
    return generator_device(generator) if device is None else torch.device(device)


def randn(*size: int, generator: torch.Generator | None, device: torch.device | str | None = None,
          dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal samples drawn on the generator's device, moved to ``device``."""
    draw = torch.randn(*size, generator=generator, device=generator_device(generator), dtype=dtype)
    return draw.to(_target(generator, device))


def rand(*size: int, generator: torch.Generator | None, device: torch.device | str | None = None,
         dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform samples on [0, 1) drawn on the generator's device, moved to ``device``."""
    draw = torch.rand(*size, generator=generator, device=generator_device(generator), dtype=dtype)
    return draw.to(_target(generator, device))


def randint(low: int, high: int, size: tuple[int, ...], *, generator: torch.Generator | None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Integers uniform on [low, high) drawn on the generator's device, moved to ``device``."""
    draw = torch.randint(low, high, size, generator=generator, device=generator_device(generator))
    return draw.to(_target(generator, device))


def randperm(n: int, *, generator: torch.Generator | None,
             device: torch.device | str | None = None) -> torch.Tensor:
    """A uniform random permutation of ``range(n)`` drawn on the generator's device, moved to ``device``."""
    return torch.randperm(n, generator=generator, device=generator_device(generator)).to(
        _target(generator, device))


def multinomial(probs: torch.Tensor, num_samples: int, *, generator: torch.Generator | None,
                replacement: bool = False) -> torch.Tensor:
    """``torch.multinomial`` drawn on the generator's device; the result is on ``probs``' device."""
    draw = torch.multinomial(probs.to(generator_device(generator)), num_samples,
                             replacement=replacement, generator=generator)
    return draw.to(probs.device)


def _uniform_like(tensor: torch.Tensor, bound: float, generator: torch.Generator | None) -> torch.Tensor:
    # U(-bound, bound) = bound * (2 U(0, 1) - 1)
    return bound * (2 * rand(*tensor.shape, generator=generator, device=tensor.device,
                             dtype=tensor.dtype) - 1)


@torch.no_grad()
def init_parameters_(module: nn.Module, generator: torch.Generator | None) -> nn.Module:
    r"""Re-draw the parameters of every ``Linear``, ``Embedding`` and ``Conv*d`` inside ``module`` from
    ``generator``, with PyTorch's default initialisation (returns ``module``).

    - ``Linear`` / ``Conv``: $W \sim U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})$ (this is
      ``kaiming_uniform_(a=\sqrt 5)``), bias alike;
    - ``Embedding``: $\mathcal{N}(0, 1)$, the padding row zero;
    - normalisation layers keep their deterministic ones and zeros.

    With ``generator=None`` the global RNG is used, as PyTorch would.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_in = layer.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            layer.weight.copy_(_uniform_like(layer.weight, bound, generator))
            if layer.bias is not None:
                layer.bias.copy_(_uniform_like(layer.bias, bound, generator))
        elif isinstance(layer, nn.Embedding):
            layer.weight.copy_(randn(*layer.weight.shape, generator=generator, device=layer.weight.device,
                                     dtype=layer.weight.dtype))
            if layer.padding_idx is not None:
                layer.weight[layer.padding_idx].zero_()
    return module
