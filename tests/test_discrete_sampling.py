"""Rejection, Metropolis–Hastings and Gibbs sampling converge to the target in total variation.

Tolerance: for N independent draws on n states, E[TV] ≈ ½ Σ sqrt(2 p (1-p) / (π N)) ≤ ½ sqrt(2n / (πN)),
about 0.006 for n = 10, N = 50 000; Markov chains give correlated draws, so larger TVs. Every bound below
is >= 3x the worst TV of a seed sweep (targets, tables and draws all from the seed; 116 seeds on a
loaded machine, 200 for the TV-decrease test), written beside it.
"""
from __future__ import annotations

import pytest
import torch

from spaces_code.discrete_sampling import (
    empirical_distribution,
    gibbs_sampling,
    metropolis_hastings,
    mh_acceptance,
    mh_transition_matrix,
    normalize,
    rejection_acceptance_rate,
    rejection_sampling,
    single_site_proposal,
    total_variation,
)

N = 50_000


def _target(device, seed: int, n: int = 10, floor: float = 0.01) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 7)
    return (torch.rand(n, generator=g) ** 3 + floor).to(device)  # skewed, unnormalised


def _skewed_independence_proposal(n: int, device) -> torch.Tensor:
    """q(y|x) = r(y) with r ∝ y + 1 whatever x: asymmetric, q(y|x) / q(x|y) = (y + 1) / (x + 1)."""
    r = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return (r / r.sum()).expand(n, n)


def _ring_proposal(n: int, device) -> torch.Tensor:
    """Local random walk: x -> x ± 1 (mod n), each with probability 1/2."""
    eye = torch.eye(n, device=device)
    return 0.5 * (eye.roll(1, dims=1) + eye.roll(-1, dims=1))


def test_total_variation_matches_float64_reference(device, seed):
    g = torch.Generator().manual_seed(seed)
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


def test_rejection_sampling_converges_in_tv(device, generator, seed):
    target = _target(device, seed)
    samples = rejection_sampling(target, torch.ones(10, device=device), N, generator=generator)
    assert samples.shape == (N,)
    assert float(total_variation(normalize(target), empirical_distribution(samples, 10))) < 0.025  # max 0.0072


def test_rejection_acceptance_rate_is_z_over_m(device):
    target = torch.tensor([1.0, 2.0, 3.0, 2.0], device=device)
    # uniform proposal q = 1/4: M = max p̃/q = 12, Z = 8, rate = 2/3
    assert float(rejection_acceptance_rate(target, torch.ones(4, device=device))) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        rejection_acceptance_rate(target, torch.tensor([1.0, 1.0, 0.0, 1.0], device=device))


@pytest.mark.parametrize("local", [False, True], ids=["uniform-proposal", "ring-proposal"])
def test_metropolis_hastings_converges_in_tv(device, generator, seed, local):
    # a local walk must cross the low-weight states between the heavy ones: a floor of 0.01 next to
    # weights near 1 makes it cross once in hundreds of steps, so the ring gets a floor of 0.1, and
    # 1000 short chains (50 draws each after a burn-in of 300) instead of 100 long, strongly correlated ones
    target = _target(device, seed, floor=0.1 if local else 0.01)
    proposal = _ring_proposal(10, device) if local else None
    samples = metropolis_hastings(target, N, proposal=proposal, num_chains=1000 if local else 100,
                                  burn_in=300 if local else 100, generator=generator)
    assert samples.shape == (N,)
    tv = float(total_variation(normalize(target), empirical_distribution(samples, 10)))
    assert tv < (0.075 if local else 0.055)  # max 0.0244 (ring) and 0.0173 (uniform proposal)


def test_gibbs_converges_in_tv_on_a_joint_table(device, generator, seed):
    g = torch.Generator().manual_seed(seed + 3)
    table = (torch.rand(3, 4, 5, generator=g) ** 2 + 0.02).to(device)
    samples = gibbs_sampling(table, N, num_chains=100, generator=generator)
    assert samples.shape == (N, 3)
    # 60 cells: E[TV] of N independent draws ≈ 0.01; sweep max 0.0168
    assert float(total_variation(normalize(table).reshape(-1),
                                 empirical_distribution(samples, (3, 4, 5)).reshape(-1))) < 0.055


def test_tv_decreases_with_more_samples(device, generator, seed):
    target = _target(device, seed)
    table = target[:6, None] * target[None, 4:]  # a 6 x 6 joint table
    sizes = [100, 30_000]
    for draw, p, shape in [
        (lambda n: rejection_sampling(target, torch.ones(10, device=device), n, generator=generator),
         normalize(target), 10),
        (lambda n: gibbs_sampling(table, n, num_chains=30, generator=generator), normalize(table), (6, 6)),
    ]:
        tvs = [float(total_variation(p.reshape(-1), empirical_distribution(draw(n), shape).reshape(-1)))
               for n in sizes]
        # 300x the samples: TV shrinks ~17x for independent draws. Sweep of 113 seeds: worst
        # TV(30 000) / TV(100) = 0.131 (rejection) and 0.102 (Gibbs), bound 1. A ring-walk MH chain is not
        # included: its ratio reached 0.62 (the 30 000 correlated draws), too close to 1 for a bound.
        assert tvs[1] < tvs[0], tvs


def test_zero_weight_states_are_never_sampled(device, generator):
    target = torch.tensor([0.0, 3.0, 0.0, 1.0, 2.0, 0.0], device=device)
    proposal = torch.ones(6, device=device)
    assert set(rejection_sampling(target, proposal, 5_000, generator=generator).tolist()) <= {1, 3, 4}
    assert set(metropolis_hastings(target, 5_000, num_chains=10, generator=generator).tolist()) <= {1, 3, 4}
    table = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]], device=device)  # irreducible for Gibbs
    cells = gibbs_sampling(table, 20_000, num_chains=20, generator=generator)
    assert bool((table[cells[:, 0], cells[:, 1]] > 0).all())
    assert float(total_variation(normalize(table).reshape(-1),
                                 empirical_distribution(cells, (2, 3)).reshape(-1))) < 0.07  # max 0.0222
    with pytest.raises(ValueError):
        metropolis_hastings(target, 10, init=torch.tensor(0), generator=generator)


def test_extreme_scales_and_integer_weights(device, generator):
    """Only ratios matter: tiny weights and integer counts give the same distribution."""
    counts = torch.tensor([5, 1, 0, 4], device=device)
    p = normalize(counts)
    for target in (counts, counts * 1e-30, counts.double() * 1e30):
        for samples in (rejection_sampling(target, torch.ones(4, device=device), N, generator=generator),
                        metropolis_hastings(target, N, num_chains=50, generator=generator)):
            assert float(total_variation(p, empirical_distribution(samples, 4))) < 0.04  # max 0.0130


def test_single_state_and_single_chain(device, generator, seed):
    one = torch.tensor([2.5], device=device)
    assert rejection_sampling(one, one, 7, generator=generator).tolist() == [0] * 7
    assert metropolis_hastings(one, 7, generator=generator).tolist() == [0] * 7
    assert gibbs_sampling(one.reshape(1, 1), 7, generator=generator).tolist() == [[0, 0]] * 7
    target = _target(device, seed, 4)
    samples = metropolis_hastings(target, 8_000, burn_in=0, generator=generator)  # one chain
    assert float(total_variation(normalize(target), empirical_distribution(samples, 4))) < 0.075  # max 0.0242


def test_single_site_proposal_is_a_symmetric_replace_one_coordinate_kernel(device, generator, seed):
    shape = (3, 4, 2)
    proposal = single_site_proposal(shape, device)  # (24, 24)
    torch.testing.assert_close(proposal.sum(-1), torch.ones(24, dtype=torch.float64, device=device))
    torch.testing.assert_close(proposal, proposal.T)
    # from cell (0, 0, 0): change x_1 to one of 2 others with prob 1/(3*3) each, stay with 1/9 + 1/12 + 1/6
    assert float(proposal[0, 1 * 8]) == pytest.approx(1 / 9)
    assert float(proposal[0, 0]) == pytest.approx(1 / 9 + 1 / 12 + 1 / 6)
    assert float(proposal[0, 1 * 8 + 1 * 2]) == 0.0  # two coordinates changed at once: impossible
    g = torch.Generator().manual_seed(seed + 5)
    table = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.05).to(device)
    samples = metropolis_hastings(table.reshape(-1), N, proposal=proposal, num_chains=100, generator=generator)
    assert float(total_variation(normalize(table).reshape(-1), empirical_distribution(samples, 24))) < 0.08  # max 0.0253


def test_hastings_correction_makes_the_target_stationary(device, seed):
    """Exact check of $\\alpha = \\min(1, p(y)q(x|y) / (p(x)q(y|x)))$ with an asymmetric proposal:
    detailed balance $p(x)K(x,y) = p(y)K(y,x)$, hence $pK = p$ (float64, to rounding)."""
    target = _target(device, seed)
    g = torch.Generator().manual_seed(seed + 11)
    proposal = (torch.rand(10, 10, generator=g, dtype=torch.float64) ** 2 + 0.01).to(device)  # asymmetric
    proposal = proposal / proposal.sum(-1, keepdim=True)
    assert float((proposal - proposal.T).abs().max()) > 0.1
    kernel = mh_transition_matrix(target, proposal)
    p = normalize(target)
    torch.testing.assert_close(kernel.sum(-1), torch.ones(10, dtype=torch.float64, device=device))
    flow = p[:, None] * kernel  # p(x) K(x, y)
    torch.testing.assert_close(flow, flow.T, atol=1e-15, rtol=1e-12)
    torch.testing.assert_close(p @ kernel, p, atol=1e-15, rtol=1e-12)
    alpha = mh_acceptance(target, proposal)
    torch.testing.assert_close(alpha, (p[None, :] * proposal.T / (p[:, None] * proposal)).clamp(max=1.0))


def test_metropolis_hastings_with_an_asymmetric_proposal(device, generator, seed):
    """An independence proposal q(y|x) = r(y), r ∝ 1..10: only the Hastings factor q(x|y)/q(y|x)
    removes r. With q(x|y) and q(y|x) swapped the chain's stationary law is ∝ p r², and without the
    factor ∝ p r: both are far from p, so the TV threshold below catches either mistake."""
    target = _target(device, seed)
    proposal = _skewed_independence_proposal(10, device)
    p, r = normalize(target), proposal[0]
    swapped_law, uncorrected_law = normalize(p * r * r), normalize(p * r)
    # sweep: TV(p, p r^2) >= 0.138, twice the bound 0.065 below, which is 3x the worst TV of the
    # correct chain (0.0207): a swapped chain fails on every stream seen
    assert float(total_variation(p, swapped_law)) > 0.065 and float(total_variation(p, uncorrected_law)) > 0
    samples = metropolis_hastings(target, N, proposal=proposal, num_chains=100, burn_in=100, generator=generator)
    tv = float(total_variation(p, empirical_distribution(samples, 10)))
    assert tv < 0.065  # sweep max 0.0207; with q(x|y) and q(y|x) swapped the TV is 0.29 (seed 1234)


def test_same_generator_same_chains_on_any_device_and_global_seed(device, seed):
    """A CPU generator drives every draw: the device and the global RNG do not change the samples."""
    target = _target("cpu", seed)
    table = target[:6, None] * target[None, 4:]
    runs = []
    for where, global_seed in (("cpu", seed + 1), (device, seed + 2)):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(seed)
        runs.append([
            rejection_sampling(target.to(where), torch.ones(10, device=where), 500, generator=g).cpu(),
            metropolis_hastings(target.to(where), 500, proposal=_ring_proposal(10, where), num_chains=10,
                                generator=g).cpu(),
            gibbs_sampling(table.to(where), 500, num_chains=10, generator=g).cpu(),
        ])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_zero_samples_requested(device, generator):
    target = torch.tensor([1.0, 2.0], device=device)
    assert rejection_sampling(target, target, 0, generator=generator).shape == (0,)
    assert metropolis_hastings(target, 0, generator=generator).shape == (0,)
    assert gibbs_sampling(target.reshape(1, 2), 0, generator=generator).shape == (0, 2)
