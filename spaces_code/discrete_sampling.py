r"""【搜出来的文本】⋅（一）从文本生成到搜索采样 — https://kexue.fm/archives/8062

The article reviews the samplers that later posts of the series use to generate text by search:
rejection sampling, Metropolis–Hastings (Metropolis et al. 1953; Hastings, "Monte Carlo sampling
methods using Markov chains and their applications", 1970) and Gibbs sampling (Geman & Geman 1984),
all for a target known only up to its normaliser, $p(x) = \tilde p(x) / Z$. The MH acceptance rate,
the key equation, with proposal $q(y|x)$:

$$\alpha(x\to y) = \min\left(1, \frac{p(y)\,q(x|y)}{p(x)\,q(y|x)}\right)$$

Every sampler here returns states whose empirical distribution converges to $p$ in total variation,
$\mathrm{TV}(p, q) = \frac{1}{2}\sum_x |p(x) - q(x)|$.

:func:`mh_acceptance` computes $\alpha$ for every pair of states and :func:`mh_transition_matrix`
the chain's exact kernel $K(x, y) = q(y|x)\,\alpha(x\to y)$ ($y\ne x$), whose stationary law is $p$
by detailed balance, $p(x)K(x,y) = \min(p(x)q(y|x), p(y)q(x|y)) = p(y)K(y,x)$. The sampler uses
the same acceptance matrix, so the tests check the formula both exactly and by sampling.

Conventions: ``target`` holds non-negative unnormalised weights $\tilde p$ (any positive scale);
states are integer indices; ``generator`` drives every random draw, on its own device (a CPU
generator gives the same chains whatever device holds the target), results on the target's device.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from spaces_code import randomness


def total_variation(p: Tensor, q: Tensor) -> Tensor:
    """Total-variation distance between distributions on the last dim (leading dims broadcast)."""
    # $\mathrm{TV}(p, q) = \frac{1}{2}\sum_x |p(x) - q(x)|$
    return 0.5 * (p - q).abs().sum(dim=-1)


def normalize(target: Tensor) -> Tensor:
    """$p = \\tilde p / Z$ over all entries (a vector or a joint table), in float64."""
    weights = target.to(torch.float64)
    return weights / weights.sum()


def empirical_distribution(samples: Tensor, shape: int | tuple[int, ...]) -> Tensor:
    """Normalised histogram (float64) of integer states.

    ``samples`` is ``(n,)`` for states of a vector of length ``shape`` or ``(n, k)`` for states of a
    joint table of ``shape`` ``(n_1, ..., n_k)``; the result has that shape.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    flat = samples if samples.dim() == 1 else _ravel(samples, shape)  # (n,)
    counts = torch.bincount(flat, minlength=math.prod(shape)).to(torch.float64)
    return (counts / max(flat.numel(), 1)).reshape(shape)


def rejection_bound(target: Tensor, proposal: Tensor) -> Tensor:
    """Smallest $M$ with $\\tilde p(x) \\le M q(x)$ for all $x$ (the proposal must cover the target)."""
    target, proposal = _as_weights(target), _as_weights(proposal)
    if bool(((target > 0) & (proposal <= 0)).any()):
        raise ValueError("the proposal must be positive wherever the target is")
    ratio = torch.where(proposal > 0, target / proposal.clamp_min(torch.finfo(proposal.dtype).tiny), 0)
    return ratio.max()


def rejection_acceptance_rate(target: Tensor, proposal: Tensor) -> Tensor:
    """Probability that one proposed state is kept: $Z / M$ (``proposal`` normalised)."""
    target, proposal = _as_weights(target), _as_weights(proposal)
    proposal = proposal / proposal.sum()
    return target.sum() / rejection_bound(target, proposal)


def rejection_sampling(target: Tensor, proposal: Tensor, num_samples: int, *,
                       generator: torch.Generator | None = None) -> Tensor:
    """Independent exact samples ``(num_samples,)`` of $\\tilde p$ = ``target`` ``(n,)`` by rejection.

    ``proposal`` ``(n,)`` holds weights of an easy distribution $q$ (normalised here).
    """
    target, proposal = _as_weights(target), _as_weights(proposal)
    proposal = proposal / proposal.sum()
    bound = rejection_bound(target, proposal)
    accept_rate = float(target.sum() / bound)
    kept = [torch.empty(0, dtype=torch.long, device=target.device)]
    missing = num_samples
    while missing > 0:
        batch = min(int(missing / accept_rate * 1.1) + 16, 1 << 22)
        candidates = randomness.multinomial(proposal, batch, replacement=True, generator=generator)  # (batch,)
        u = randomness.rand(batch, generator=generator, device=target.device, dtype=proposal.dtype)
        # keep x ~ q with probability $\tilde p(x) / (M q(x))$
        accepted = candidates[u * bound * proposal[candidates] < target[candidates]]
        kept.append(accepted[:missing])
        missing -= kept[-1].numel()
    return torch.cat(kept)


def mh_acceptance(target: Tensor, proposal: Tensor) -> Tensor:
    """Acceptance probabilities ``(n, n)``: entry ``[x, y]`` is $\\alpha(x\\to y)$ for the move x -> y.

    ``proposal`` rows are $q(\\cdot|x)$ (normalised here). Pairs that are never proposed, or that
    start from a state of zero weight (never visited), get 0.
    """
    target = _as_weights(target)
    proposal = _as_weights(proposal)
    proposal = proposal / proposal.sum(-1, keepdim=True)
    forward = target[:, None] * proposal  # p(x) q(y|x), (n, n)
    backward = forward.T  # p(y) q(x|y)
    # $\alpha(x\to y) = \min\left(1, \frac{p(y)\,q(x|y)}{p(x)\,q(y|x)}\right)$
    ratio = backward / forward.clamp_min(torch.finfo(forward.dtype).tiny)
    return torch.where(forward > 0, ratio.clamp(max=1.0), 0.0)


def mh_transition_matrix(target: Tensor, proposal: Tensor) -> Tensor:
    """The MH chain's exact kernel ``(n, n)``: $K(x,y) = q(y|x)\\alpha(x\\to y)$ off the diagonal,
    the rejected mass on it (float64; rows sum to 1)."""
    proposal = _as_weights(proposal)
    proposal = proposal / proposal.sum(-1, keepdim=True)
    moves = proposal * mh_acceptance(target, proposal)
    moves.fill_diagonal_(0.0)
    return moves + torch.diag(1.0 - moves.sum(-1))


def metropolis_hastings(target: Tensor, num_samples: int, *, proposal: Tensor | None = None,
                        init: Tensor | None = None, num_chains: int = 1, burn_in: int = 100,
                        generator: torch.Generator | None = None) -> Tensor:
    """States ``(num_samples,)`` of MH chains targeting $\\tilde p$ = ``target`` ``(n,)``.

    ``proposal`` is an ``(n, n)`` matrix with rows ``q(.|x)`` (irreducible; default uniform);
    ``num_chains`` chains run in parallel from ``init`` ``(num_chains,)`` (default: uniform over the
    states with $\\tilde p > 0$), drop ``burn_in`` steps each, and are read out step by step.
    """
    target = _as_weights(target)
    n = target.shape[-1]
    proposal = torch.ones(n, n, device=target.device) if proposal is None else _as_weights(proposal)
    proposal = proposal / proposal.sum(-1, keepdim=True)
    acceptance = mh_acceptance(target, proposal)  # (n, n)
    state = _initial_states(target, num_chains, init, generator)  # (chains,)
    steps = burn_in + math.ceil(num_samples / num_chains)
    chain = torch.empty(steps, num_chains, dtype=torch.long, device=target.device)
    uniforms = randomness.rand(steps, 2, num_chains, generator=generator, device=target.device, dtype=target.dtype)
    stacked, last = _stacked_cdf(proposal), _last_positive(proposal)  # (n * n,), (n,)
    for t in range(steps):
        candidate = _draw_from_rows(stacked, last, state, uniforms[t, 0])  # (chains,)
        # accept y ~ q(.|x) with probability $\alpha(x \to y)$; p(x) > 0 along the chain
        state = torch.where(uniforms[t, 1] < acceptance[state, candidate], candidate, state)
        chain[t] = state
    return chain[burn_in:].reshape(-1)[:num_samples]


def gibbs_sampling(table: Tensor, num_samples: int, *, init: Tensor | None = None, num_chains: int = 1,
                   burn_in: int = 100, generator: torch.Generator | None = None) -> Tensor:
    """States ``(num_samples, k)`` of a systematic-scan Gibbs sampler on a joint table.

    ``table`` ``(n_1, ..., n_k)`` holds $\\tilde p(x_1, \\dots, x_k)$; one sweep draws each
    $x_i \\sim p(x_i \\mid x_{-i})$ in turn and the state after each sweep is recorded.
    ``init`` is ``(num_chains, k)`` (default: uniform over the cells with $\\tilde p > 0$).
    """
    table = _as_weights(table)
    shape = tuple(table.shape)
    k = len(shape)
    flat = _initial_states(table.reshape(-1), num_chains, None if init is None else _ravel(init, shape), generator)
    state = _unravel(flat, shape)  # (chains, k)
    # per coordinate i: rows of the table along axis i, indexed by the other coordinates
    rows = [table.movedim(i, -1).reshape(-1, shape[i]) for i in range(k)]  # (prod n_{-i}, n_i)
    stacked = [_stacked_cdf(r) for r in rows]
    lasts = [_last_positive(r) for r in rows]
    strides = [_strides(shape[:i] + shape[i + 1:], insert_zero_at=i, device=table.device) for i in range(k)]
    steps = burn_in + math.ceil(num_samples / num_chains)
    chain = torch.empty(steps, num_chains, k, dtype=torch.long, device=table.device)
    uniforms = randomness.rand(steps, k, num_chains, generator=generator, device=table.device, dtype=table.dtype)
    for t in range(steps):
        for i in range(k):
            other = (state * strides[i]).sum(-1)  # (chains,) row of $x_{-i}$
            # $x_i \sim p(x_i \mid x_{-i}) \propto \tilde p(x_1, \dots, x_k)$ as a function of $x_i$
            state[:, i] = _draw_from_rows(stacked[i], lasts[i], other, uniforms[t, i])
        chain[t] = state
    return chain[burn_in:].reshape(-1, k)[:num_samples]


def single_site_proposal(shape: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
    """MH proposal ``(N, N)`` on the flattened cells of a table: redraw one coordinate uniformly.

    For a sentence of k tokens this is "replace one word": pick a position, then any word for it
    (possibly the same). The matrix is symmetric, so the MH ratio reduces to $p(y)/p(x)$.
    """
    cells = _unravel(torch.arange(math.prod(shape), device=device), tuple(shape))  # (N, k)
    differ = (cells[:, None, :] != cells[None, :, :]).sum(-1)  # (N, N)
    per_site = torch.tensor([1.0 / (len(shape) * n) for n in shape], dtype=torch.float64, device=device)
    # a one-coordinate change at site i has probability 1 / (k n_i); staying sums over all k sites
    changed_site = (cells[:, None, :] != cells[None, :, :]).to(torch.float64).argmax(-1)  # (N, N)
    return torch.where(differ == 1, per_site[changed_site], 0.0) + torch.diag(
        torch.full((cells.shape[0],), float(per_site.sum()), dtype=torch.float64, device=device))


def _initial_states(target: Tensor, num_chains: int, init: Tensor | None,
                    generator: torch.Generator | None) -> Tensor:
    """Start states ``(num_chains,)`` with positive target weight."""
    if init is None:
        support = (target > 0).to(target.dtype)
        return randomness.multinomial(support, num_chains, replacement=True, generator=generator)
    init = torch.as_tensor(init, device=target.device).reshape(-1).expand(num_chains).clone()
    if bool((target[init] <= 0).any()):
        raise ValueError("init must start every chain on a state with positive target weight")
    return init


def _stacked_cdf(weights: Tensor) -> Tensor:
    """Row-normalised CDFs of ``weights`` ``(rows, n)``, row r shifted into (r, r + 1], flattened.

    The result is sorted, so one ``searchsorted`` of ``r + u`` draws from row r without gathering rows
    (a per-step gather of whole rows is the slow part of a chain on a busy CPU).
    """
    cdf = weights.cumsum(-1)
    cdf = torch.where(cdf[:, -1:] > 0, cdf / cdf[:, -1:], 1.0)  # all-zero rows are never drawn from
    cdf[:, -1] = 1.0
    offsets = torch.arange(weights.shape[0], device=weights.device, dtype=cdf.dtype)[:, None]
    return (cdf + offsets).reshape(-1)  # (rows * n,)


def _draw_from_rows(stacked: Tensor, last: Tensor, rows: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw ``(chains,)`` from the given ``rows`` with uniforms ``u`` ``(chains,)``.

    ``right=True`` never lands on a zero-weight entry; ``last`` (each row's last positive entry)
    guards against ``r + u`` rounding up to ``r + 1``.
    """
    n = stacked.numel() // last.numel()
    flat = torch.searchsorted(stacked, rows.to(stacked.dtype) + u, right=True)
    return torch.minimum(flat - rows * n, last[rows])


def _last_positive(weights: Tensor) -> Tensor:
    """Index of the last positive entry of each row ``(..., n) -> (...)``."""
    positions = torch.arange(weights.shape[-1], device=weights.device)
    return torch.where(weights > 0, positions, -1).amax(-1)


def _as_weights(weights: Tensor) -> Tensor:
    """Unnormalised weights in float64: sums and cumulative sums stay exact enough for any table size."""
    return torch.as_tensor(weights).to(torch.float64)


def _strides(shape: tuple[int, ...], insert_zero_at: int | None = None,
             device: torch.device | None = None) -> Tensor:
    """C-order strides of ``shape``, optionally with a 0 inserted (that coordinate is ignored)."""
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    if insert_zero_at is not None:
        strides.insert(insert_zero_at, 0)
    return torch.tensor(strides, device=device)


def _ravel(states: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Multi-indices ``(..., k)`` to flat indices ``(...)`` (C order)."""
    return (states * _strides(shape, device=states.device)).sum(-1)


def _unravel(flat: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Flat indices ``(...)`` to multi-indices ``(..., k)`` (C order)."""
    return torch.stack(torch.unravel_index(flat, shape), dim=-1)
