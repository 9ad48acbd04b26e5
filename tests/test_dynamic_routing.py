"""Dynamic routing as clustering: the routing objective L does not decrease over iterations."""
from __future__ import annotations

import math

import pytest
import torch

from spaces_code.dynamic_routing import (
    CapsuleLayer,
    capsule_predictions,
    dynamic_routing,
    kmeans_predictions,
    routing_objective,
    squash,
)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (2, 4, 32, 10, 16)])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_routing_objective_never_decreases(device, generator, shape, scale):
    u_hat = scale * torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
    result = dynamic_routing(u_hat, iterations=12)
    objective = result.objective  # (iterations, *batch)
    # each iteration maximises a lower bound touching L (MM step): increments >= 0 up to rounding
    tolerance = 1e-10 * (1 + objective.abs().max())
    assert float(objective.diff(dim=0).min()) >= -tolerance
    assert float((result.centres.norm(dim=-1) - 1).abs().max()) < 1e-9
    torch.testing.assert_close(result.coupling.sum(-1), torch.ones_like(result.coupling.sum(-1)))


def test_float32_routing_is_monotone_and_matches_float64(device, generator):
    u_hat = torch.randn(3, 20, 6, 8, generator=generator, device=device)
    result = dynamic_routing(u_hat, iterations=10)
    reference = dynamic_routing(u_hat.double().cpu(), iterations=10)
    torch.testing.assert_close(result.objective.double().cpu(), reference.objective, rtol=1e-5, atol=1e-4)
    assert float(result.objective.diff(dim=0).min()) >= -1e-4 * float(result.objective.abs().max())


def test_objective_matches_a_naive_double_loop(device, generator):
    u_hat = torch.randn(5, 3, 4, generator=generator, device=device, dtype=torch.float64)
    v = torch.randn(3, 4, generator=generator, device=device, dtype=torch.float64)
    expected = sum(math.log(sum(math.exp(float(u_hat[i, j] @ v[j])) for j in range(3))) for i in range(5))
    assert float(routing_objective(u_hat, v)) == pytest.approx(expected, rel=1e-12)


def test_routing_reaches_the_stationary_point_of_l(device, generator):
    """At convergence v_j = normalize(sum_i c_ij u_hat_{j|i}) with c = softmax_j <u_hat_{j|i}, v_j>."""
    u_hat = torch.randn(40, 4, 6, generator=generator, device=device, dtype=torch.float64)
    result = dynamic_routing(u_hat, iterations=300)
    coupling = torch.softmax((u_hat * result.centres[None]).sum(-1), dim=-1)
    again = torch.nn.functional.normalize((coupling[..., None] * u_hat).sum(0), dim=-1)
    torch.testing.assert_close(again, result.centres, atol=1e-6, rtol=0)


def test_original_accumulating_rule_is_not_an_ascent_method(device, generator):
    """The paper's b += <u_hat, squash(s)> can lower L: the monotonicity is specific to the replaced logits."""
    g = torch.Generator(device=device).manual_seed(0)
    u = torch.randn(4, 32, 8, generator=g, device=device)
    weights = 0.5 * torch.randn(32, 10, 16, 8, generator=g, device=device)
    u_hat = capsule_predictions(u, weights)
    replaced = dynamic_routing(u_hat, 8).objective
    accumulated = dynamic_routing(u_hat, 8, accumulate=True).objective
    assert float(replaced.diff(dim=0).min()) >= -1e-3
    assert float(accumulated.diff(dim=0).min()) < -0.05
    assert bool((replaced[-1] >= accumulated[-1]).all())


def test_kmeans_special_case_recovers_planted_clusters(device, generator):
    centres = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], device=device), dim=-1)
    labels = torch.arange(3, device=device).repeat_interleave(50)
    x = torch.nn.functional.normalize(centres[labels] + 0.2 * torch.randn(150, 3, generator=generator, device=device),
                                      dim=-1)
    init = x[[0, 50, 100]] + 0.3 * torch.randn(3, 3, generator=generator, device=device)
    result = dynamic_routing(kmeans_predictions(x, 3, sharpness=10.0), iterations=15,
                             init=torch.nn.functional.normalize(init, dim=-1))
    assert float((result.coupling.argmax(-1) == labels).float().mean()) > 0.97
    assert float((result.centres * centres).sum(-1).min()) > 0.97
    assert float(result.objective.diff().min()) >= -1e-4


def test_squash_and_predictions(device, generator):
    s = torch.randn(6, 5, generator=generator, device=device, dtype=torch.float64) * torch.tensor(
        [0.0, 1e-3, 0.5, 1.0, 10.0, 1e6], device=device, dtype=torch.float64)[:, None]
    out = squash(s)
    norm = s.norm(dim=-1)
    torch.testing.assert_close(out.norm(dim=-1), norm ** 2 / (1 + norm ** 2))
    assert float(out[0].abs().max()) == 0.0  # the zero vector stays zero, no NaN
    torch.testing.assert_close(torch.nn.functional.normalize(out[1:], dim=-1), torch.nn.functional.normalize(s[1:], dim=-1))
    u = torch.randn(2, 3, 4, generator=generator, device=device)
    weights = torch.randn(3, 5, 6, 4, generator=generator, device=device)
    expected = torch.stack([torch.stack([torch.stack([weights[i, j] @ u[b, i] for j in range(5)]) for i in range(3)])
                            for b in range(2)])
    torch.testing.assert_close(capsule_predictions(u, weights), expected, rtol=1e-5, atol=1e-5)


def test_capsule_layer_outputs_short_capsules_and_routes_monotonically(device, generator):
    layer = CapsuleLayer(n_in=12, d_in=4, n_out=5, d_out=6, iterations=6, generator=generator, device=device)
    u = torch.randn(3, 12, 4, generator=generator, device=device)
    out = layer(u)
    assert out.shape == (3, 5, 6)
    lengths = out.detach().norm(dim=-1)
    assert float(lengths.max()) < 1 and float(lengths.min()) >= 0
    objective = layer.last_routing.objective.detach()
    assert float(objective.diff(dim=0).min()) >= -1e-4 * float(objective.abs().max())
    # gradients flow to the transformation matrices through the routing
    out.norm(dim=-1).sum().backward()
    assert layer.weights.grad is not None and float(layer.weights.grad.abs().sum()) > 0
