"""Rejection, Metropolis–Hastings and Gibbs sampling converge to the target in total variation.

Tolerance: for N independent draws on n states, E[TV] ≈ ½ Σ sqrt(2 p (1-p) / (π N)) ≤ ½ sqrt(2n / (πN)),
about 0.006 for n = 10, N = 50 000. Exact samplers must be within 0.02 there, Markov chains (correlated
draws) within 0.03.
"""
from __future__ import annotations

import pytest
import torch

from spaces_code.discrete_sampling import (
    empirical_distribution,
    gibbs_sampling,
    metropolis_hastings,
    normalize,
    rejection_acceptance_rate,
    rejection_sampling,
    single_site_proposal,
    total_variation,
)

N = 50_000


def _target(device, n: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return (torch.rand(n, generator=g) ** 3 + 0.01).to(device)  # skewed, unnormalised


def _ring_proposal(n: int, device) -> torch.Tensor:
    """Local random walk: x -> x ± 1 (mod n), each with probability 1/2."""
    eye = torch.eye(n, device=device)
    return 0.5 * (eye.roll(1, dims=1) + eye.roll(-1, dims=1))


def test_total_variation_matches_float64_reference(device):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(4, 3, 7, generator=g)
    q = torch.rand(3, 7, generator=g)
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    reference = 0.5 * (p.double() - q.double()).abs().sum(-1)  # broadcast over the leading dim
    got = total_variation(p.to(device), q.to(device))
    torch.testing.assert_close(got.cpu().double(), reference, atol=1e-6, rtol=0)
    assert float(total_variation(p, p).abs().max()) == 0.0
    disjoint = total_variation(torch.tensor([0.5, 0.5, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.3, 0.7]))
    assert float(disjoint) == pytest.approx(1.0)


def test_empirical_distribution_counts_vectors_and_tables(device):
    samples = torch.tensor([0, 2, 2, 3], device=device)
    torch.testing.assert_close(empirical_distribution(samples, 5).cpu(),
                               torch.tensor([0.25, 0, 0.5, 0.25, 0], dtype=torch.float64))
    cells = torch.tensor([[0, 1], [1, 2], [1, 2], [0, 1]], device=device)
    table = empirical_distribution(cells, (2, 3)).cpu()
    assert table[0, 1] == 0.5 and table[1, 2] == 0.5 and table.sum() == 1


def test_rejection_sampling_converges_in_tv(device, generator):
    target = _target(device)
    samples = rejection_sampling(target, torch.ones(10, device=device), N, generator=generator)
    assert samples.shape == (N,)
    assert float(total_variation(normalize(target), empirical_distribution(samples, 10))) < 0.02


def test_rejection_acceptance_rate_is_z_over_m(device):
    target = torch.tensor([1.0, 2.0, 3.0, 2.0], device=device)
    # uniform proposal q = 1/4: M = max p̃/q = 12, Z = 8, rate = 2/3
    assert float(rejection_acceptance_rate(target, torch.ones(4, device=device))) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        rejection_acceptance_rate(target, torch.tensor([1.0, 1.0, 0.0, 1.0], device=device))


@pytest.mark.parametrize("local", [False, True], ids=["uniform-proposal", "ring-proposal"])
def test_metropolis_hastings_converges_in_tv(device, generator, local):
    target = _target(device)
    proposal = _ring_proposal(10, device) if local else None
    # a local walk must cross low-weight states: it needs a longer burn-in than the uniform proposal
    samples = metropolis_hastings(target, N, proposal=proposal, num_chains=100, burn_in=500 if local else 100,
                                  generator=generator)
    assert samples.shape == (N,)
    assert float(total_variation(normalize(target), empirical_distribution(samples, 10))) < 0.03


def test_gibbs_converges_in_tv_on_a_joint_table(device, generator):
    g = torch.Generator().manual_seed(3)
    table = (torch.rand(3, 4, 5, generator=g) ** 2 + 0.02).to(device)
    samples = gibbs_sampling(table, N, num_chains=100, generator=generator)
    assert samples.shape == (N, 3)
    # 60 cells: E[TV] of N independent draws ≈ 0.01
    assert float(total_variation(normalize(table).reshape(-1),
                                 empirical_distribution(samples, (3, 4, 5)).reshape(-1))) < 0.03


def test_tv_decreases_with_more_samples(device, generator):
    target = _target(device)
    table = target[:6, None] * target[None, 4:]  # a 6 x 6 joint table
    sizes = [300, 3_000, 30_000]
    for draw, p, shape in [
        (lambda n: rejection_sampling(target, torch.ones(10, device=device), n, generator=generator),
         normalize(target), 10),
        (lambda n: metropolis_hastings(target, n, proposal=_ring_proposal(10, device), num_chains=30,
                                       generator=generator), normalize(target), 10),
        (lambda n: gibbs_sampling(table, n, num_chains=30, generator=generator), normalize(table), (6, 6)),
    ]:
        tvs = [float(total_variation(p.reshape(-1), empirical_distribution(draw(n), shape).reshape(-1)))
               for n in sizes]
        assert tvs[0] > tvs[1] > tvs[2], tvs


def test_zero_weight_states_are_never_sampled(device, generator):
    target = torch.tensor([0.0, 3.0, 0.0, 1.0, 2.0, 0.0], device=device)
    proposal = torch.ones(6, device=device)
    assert set(rejection_sampling(target, proposal, 5_000, generator=generator).tolist()) <= {1, 3, 4}
    assert set(metropolis_hastings(target, 5_000, num_chains=10, generator=generator).tolist()) <= {1, 3, 4}
    table = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]], device=device)  # irreducible for Gibbs
    cells = gibbs_sampling(table, 20_000, num_chains=20, generator=generator)
    assert bool((table[cells[:, 0], cells[:, 1]] > 0).all())
    assert float(total_variation(normalize(table).reshape(-1),
                                 empirical_distribution(cells, (2, 3)).reshape(-1))) < 0.03
    with pytest.raises(ValueError):
        metropolis_hastings(target, 10, init=torch.tensor(0), generator=generator)


def test_extreme_scales_and_integer_weights(device, generator):
    """Only ratios matter: tiny weights and integer counts give the same distribution."""
    counts = torch.tensor([5, 1, 0, 4], device=device)
    p = normalize(counts)
    for target in (counts, counts * 1e-30, counts.double() * 1e30):
        for samples in (rejection_sampling(target, torch.ones(4, device=device), N, generator=generator),
                        metropolis_hastings(target, N, num_chains=50, generator=generator)):
            assert float(total_variation(p, empirical_distribution(samples, 4))) < 0.02


def test_single_state_and_single_chain(device, generator):
    one = torch.tensor([2.5], device=device)
    assert rejection_sampling(one, one, 7, generator=generator).tolist() == [0] * 7
    assert metropolis_hastings(one, 7, generator=generator).tolist() == [0] * 7
    assert gibbs_sampling(one.reshape(1, 1), 7, generator=generator).tolist() == [[0, 0]] * 7
    target = _target(device, 4)
    samples = metropolis_hastings(target, 8_000, burn_in=0, generator=generator)  # one chain
    assert float(total_variation(normalize(target), empirical_distribution(samples, 4))) < 0.03


def test_single_site_proposal_is_a_symmetric_replace_one_coordinate_kernel(device, generator):
    shape = (3, 4, 2)
    proposal = single_site_proposal(shape, device)  # (24, 24)
    torch.testing.assert_close(proposal.sum(-1), torch.ones(24, dtype=torch.float64, device=device))
    torch.testing.assert_close(proposal, proposal.T)
    # from cell (0, 0, 0): change x_1 to one of 2 others with prob 1/(3*3) each, stay with 1/9 + 1/12 + 1/6
    assert float(proposal[0, 1 * 8]) == pytest.approx(1 / 9)
    assert float(proposal[0, 0]) == pytest.approx(1 / 9 + 1 / 12 + 1 / 6)
    assert float(proposal[0, 1 * 8 + 1 * 2]) == 0.0  # two coordinates changed at once: impossible
    g = torch.Generator().manual_seed(5)
    table = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.05).to(device)
    samples = metropolis_hastings(table.reshape(-1), N, proposal=proposal, num_chains=100, generator=generator)
    assert float(total_variation(normalize(table).reshape(-1), empirical_distribution(samples, 24))) < 0.03


def test_zero_samples_requested(device, generator):
    target = torch.tensor([1.0, 2.0], device=device)
    assert rejection_sampling(target, target, 0, generator=generator).shape == (0,)
    assert metropolis_hastings(target, 0, generator=generator).shape == (0,)
    assert gibbs_sampling(target.reshape(1, 2), 0, generator=generator).shape == (0, 2)
