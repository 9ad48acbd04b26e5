r"""再来一顿贺岁宴：从K-Means到Capsule — https://kexue.fm/archives/5112

Paper: Sabour, Frosst & Hinton, "Dynamic Routing Between Capsules" (NIPS 2017). The article reads
dynamic routing as clustering: the output capsules $\boldsymbol{v}_j$ are cluster centres of the
predictions $\hat{\boldsymbol{u}}_{j|i}$ of the input capsules. With inner-product similarity and the
max over clusters smoothed into a logsumexp, the centres maximise

$$L = \sum_i \log\sum_j e^{\langle \hat{\boldsymbol{u}}_{j|i}, \boldsymbol{v}_j\rangle},\qquad \|\boldsymbol{v}_j\| = 1$$

and the fixed-point iteration of its stationarity condition is the routing

$$c_{ij} = \mathrm{softmax}_j\big(\langle \hat{\boldsymbol{u}}_{j|i}, \boldsymbol{v}_j\rangle\big),\qquad
\boldsymbol{v}_j = \frac{\sum_i c_{ij}\hat{\boldsymbol{u}}_{j|i}}{\|\sum_i c_{ij}\hat{\boldsymbol{u}}_{j|i}\|}$$

(the logits $b_{ij}=\langle \hat{\boldsymbol{u}}_{j|i}, \boldsymbol{v}_j\rangle$ are replaced, not accumulated, and
squash is applied to the output only). Because $\log\sum_j e^{a_j} = \max_{c}\sum_j c_j a_j + H(c)$, each
iteration maximises a lower bound that touches $L$ (a minorise-maximise step), so $L$ never decreases.
With shared predictions $\hat{\boldsymbol{u}}_{j|i} = \kappa\,\boldsymbol{x}_i$ it is soft spherical K-Means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spaces_code.randomness import randn


def squash(s: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Capsule non-linearity $\frac{\|s\|^2}{1+\|s\|^2}\frac{s}{\|s\|}$ on the last dim."""
    sq = (s ** 2).sum(-1, keepdim=True)
    return sq / (1 + sq) * s / (sq + eps).sqrt()


def routing_objective(u_hat: Tensor, v: Tensor) -> Tensor:
    r"""$L = \sum_i \log\sum_j e^{\langle \hat u_{j|i}, v_j\rangle}$ ``(...)`` for ``u_hat`` ``(..., n_in, n_out, d)``, ``v`` ``(..., n_out, d)``."""
    logits = (u_hat * v[..., None, :, :]).sum(-1)  # (..., n_in, n_out)
    return torch.logsumexp(logits, dim=-1).sum(-1)


@dataclass
class RoutingResult:
    capsules: Tensor    # (..., n_out, d): squash(s_j), the layer's output
    centres: Tensor     # (..., n_out, d): unit v_j, the cluster centres
    coupling: Tensor    # (..., n_in, n_out): c_ij of the last iteration
    objective: Tensor   # (iterations, ...): L after each iteration


def dynamic_routing(u_hat: Tensor, iterations: int = 3, init: Tensor | None = None,
                    accumulate: bool = False) -> RoutingResult:
    r"""Route predictions ``u_hat`` ``(..., n_in, n_out, d)`` to ``n_out`` capsules.

    ``init`` ``(..., n_out, d)``: starting centres (as K-Means needs when the predictions are shared);
    by default the first coupling is uniform ($b_{ij}=0$). ``accumulate=True`` is the original paper's
    $b_{ij} \leftarrow b_{ij} + \langle \hat u_{j|i}, \mathrm{squash}(s_j)\rangle$, kept for comparison.
    """
    logits = (u_hat * init[..., None, :, :]).sum(-1) if init is not None else u_hat.new_zeros(u_hat.shape[:-1])
    history = []
    for _ in range(iterations):
        # $c_{ij} = \mathrm{softmax}_j(b_{ij})$
        coupling = torch.softmax(logits, dim=-1)  # (..., n_in, n_out)
        s = (coupling[..., None] * u_hat).sum(-3)  # (..., n_out, d)
        # $v_j = s_j / \|s_j\|$
        centres = torch.nn.functional.normalize(s, dim=-1)
        agreement = (u_hat * (squash(s) if accumulate else centres)[..., None, :, :]).sum(-1)  # (..., n_in, n_out)
        logits = logits + agreement if accumulate else agreement
        history.append(routing_objective(u_hat, centres))
    return RoutingResult(capsules=squash(s), centres=centres, coupling=coupling, objective=torch.stack(history))


def capsule_predictions(u: Tensor, weights: Tensor) -> Tensor:
    r"""$\hat u_{j|i} = W_{ji} u_i$: ``u`` ``(..., n_in, d_in)``, ``weights`` ``(n_in, n_out, d_out, d_in)``."""
    return torch.einsum("ijoc,...ic->...ijo", weights, u)  # (..., n_in, n_out, d_out)


def kmeans_predictions(x: Tensor, num_clusters: int, sharpness: float = 1.0) -> Tensor:
    r"""Shared predictions $\hat u_{j|i} = \kappa x_i$ ``(..., n, k, d)``: routing becomes soft spherical K-Means.

    ``sharpness`` $\kappa$ plays the role of an inverse temperature (in a capsule network it is the length
    of the prediction vectors).
    """
    return (sharpness * x)[..., :, None, :].expand(*x.shape[:-1], num_clusters, x.shape[-1])


class CapsuleLayer(nn.Module):
    r"""A fully connected capsule layer: predictions $\hat u_{j|i} = W_{ji} u_i$, then routing.

    $W_{ji}$ is drawn from $\mathcal N(0, 1/d_{in})$ with ``generator`` (on ``device``, default the
    generator's device). ``forward`` maps input capsules ``(..., n_in, d_in)`` to output capsules ``(..., n_out, d_out)``
    (lengths in [0, 1), read as existence probabilities) and keeps the full :class:`RoutingResult`
    of the last call in ``last_routing`` for inspection.
    """

    def __init__(self, n_in: int, d_in: int, n_out: int, d_out: int, iterations: int = 3,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None):
        super().__init__()
        scale = 1 / math.sqrt(d_in)
        # drawn on the generator's device, then moved: a CPU generator gives the same W_ji on every device
        self.weights = nn.Parameter(
            scale * randn(n_in, n_out, d_out, d_in, generator=generator, device=device))
        self.iterations = iterations
        self.last_routing: RoutingResult | None = None

    def forward(self, u: Tensor) -> Tensor:
        self.last_routing = dynamic_routing(capsule_predictions(u, self.weights), self.iterations)
        return self.last_routing.capsules
