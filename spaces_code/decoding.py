r"""如何应对Seq2Seq中的“根本停不下来”问题？ — https://kexue.fm/archives/7500

Paper: Welleck, Kulikov, Kim, Pang and Cho, "Consistency of a Recurrent Language Model With Respect to
Incomplete Decoding" (2020, arXiv:2002.02492).

An autoregressive model gives $p(y_t|y_{<t}, x)$. A decoding algorithm replaces it by

$$q(y_t|y_{<t}, x) = \frac{p(y_t|y_{<t}, x)\,\mathbb{1}[y_t \in V_t]}{\sum_{v \in V_t} p(v|y_{<t}, x)},$$

where $V_t$ is the candidate set (the top-$k$ tokens, or the smallest set of top tokens whose mass
reaches $p$). If ``<eos>`` can drop out of $V_t$, decoding may never stop even though the model itself
does; *consistent* top-k / nucleus sampling always puts ``<eos>`` into $V_t$. Deterministic decoding
can fail to stop too: greedy search (beam search with one beam) takes the argmax, and a loop whose
argmax is never ``<eos>`` goes on forever. The *self-terminating* model instead guarantees

$$p(\text{<eos>}|y_{<t}) = 1 - \alpha_t,\qquad \alpha_t = (1-\epsilon)\,\sigma(s_t)\,\alpha_{t-1},\quad \alpha_0 = 1,$$

so $p(\text{<eos>}|y_{<t}) \ge 1-(1-\epsilon)^t \to 1$ whatever the scores $s_t$.

Every decoder takes ``next_logits(tokens)``: a map from token ids ``(batch, t)`` to the next token's
logits ``(batch, vocab)``. Samplers take a ``generator`` and draw on its device (a CPU generator gives
the same tokens whatever device the model runs on).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from spaces_code import randomness

NextLogits = Callable[[Tensor], Tensor]


def top_k_filter(logits: Tensor, k: int, keep: int | None = None) -> Tensor:
    """Set every logit outside the ``k`` largest to ``-inf`` (``keep``, e.g. eos, always stays)."""
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    k = min(k, logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (..., 1)
    dropped = logits < kth  # ties with the k-th value are kept
    if keep is not None:
        dropped[..., keep] = False
    return logits.masked_fill(dropped, float("-inf"))


def top_p_filter(logits: Tensor, p: float, keep: int | None = None) -> Tensor:
    """Nucleus: keep the smallest set of most probable tokens whose probability reaches ``p``."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top-p needs 0 < p <= 1, got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (..., V)
    probs = sorted_logits.softmax(dim=-1)
    # a token is dropped when the tokens ranked before it already hold mass >= p
    mass_before = probs.cumsum(dim=-1) - probs
    dropped_sorted = mass_before >= p
    dropped_sorted[..., 0] = False
    dropped = torch.zeros_like(dropped_sorted).scatter(-1, order, dropped_sorted)
    if keep is not None:
        dropped[..., keep] = False
    return logits.masked_fill(dropped, float("-inf"))


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None,
                  keep: int | None = None) -> Tensor:
    """Top-k then nucleus filtering; the surviving tokens form the candidate set $V_t$."""
    if top_k is not None:
        logits = top_k_filter(logits, top_k, keep)
    if top_p is not None:
        logits = top_p_filter(logits, top_p, keep)
    return logits


def _decode(next_logits: NextLogits, prompt: Tensor, max_new_tokens: int, eos: int | None,
            choose: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """Append ``choose(logits)`` for ``max_new_tokens`` steps; rows that emitted eos stay eos."""
    tokens = prompt  # (batch, t0)
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        nxt = choose(next_logits(tokens))  # (batch,)
        if eos is not None:
            nxt = nxt.masked_fill(finished, eos)
            finished = finished | (nxt == eos)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
    return tokens, finished


def greedy_decode(next_logits: NextLogits, prompt: Tensor, max_new_tokens: int,
                  eos: int | None = None) -> tuple[Tensor, Tensor]:
    """Argmax at every step from ``prompt`` (batch, t0).

    Returns ``(tokens (batch, t0 + max_new_tokens), finished (batch,))``; finished rows are padded
    with ``eos``.
    """
    return _decode(next_logits, prompt, max_new_tokens, eos, lambda logits: logits.argmax(dim=-1))


def sample_decode(next_logits: NextLogits, prompt: Tensor, max_new_tokens: int, eos: int | None = None,
                  top_k: int | None = None, top_p: float | None = None, temperature: float = 1.0,
                  consistent: bool = False,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Ancestral (no ``top_k``/``top_p``), top-k or nucleus sampling from ``prompt`` (batch, t0).

    ``consistent=True`` keeps ``eos`` in every candidate set (consistent sampling). Tokens are drawn on
    ``generator``'s device and moved to the model's. Returns
    ``(tokens (batch, t0 + max_new_tokens), finished (batch,))``; finished rows are padded with eos.
    """
    if consistent and eos is None:
        raise ValueError("consistent sampling needs the eos token id")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")

    def choose(logits: Tensor) -> Tensor:
        # $q(y_t|y_{<t}) \propto p(y_t|y_{<t})^{1/T}\,\mathbb{1}[y_t \in V_t]$
        logits = filter_logits(logits / temperature, top_k, top_p, eos if consistent else None)
        return randomness.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)

    return _decode(next_logits, prompt, max_new_tokens, eos, choose)


def beam_search(next_logits: NextLogits, prompt: Tensor, max_new_tokens: int, eos: int,
                beam_size: int) -> tuple[Tensor, float, bool]:
    """Beam search for one prompt (t0,): maximise $\\sum_t \\log p(y_t|y_{<t})$.

    Each step ranks every extension ``(beam, token)`` of the live beams. A hypothesis ends only when
    its ``eos`` extension is among the ``beam_size`` best (eos is a candidate like any other token,
    never accepted from outside the top-k); the best non-eos extensions, up to ``beam_size``, stay
    live. So with ``beam_size=1`` this is greedy decoding: it stops exactly when the argmax is eos.

    Returns ``(tokens, log_prob, finished)``: the best hypothesis ending in ``eos`` if one was found,
    else the best unfinished one after ``max_new_tokens`` steps. Stops early once the best finished
    score beats every live beam (log-probabilities only decrease as a hypothesis grows).
    """
    if beam_size < 1:
        raise ValueError(f"beam search needs beam_size >= 1, got {beam_size}")
    alive = prompt[None, :]  # (beams, t)
    alive_scores = torch.zeros(1, dtype=torch.float64, device=prompt.device)
    best, best_score = None, -math.inf
    for _ in range(max_new_tokens):
        log_probs = next_logits(alive).double().log_softmax(dim=-1)  # (beams, V)
        # $\log p(y_{\le t}) = \log p(y_{<t}) + \log p(y_t|y_{<t})$
        scores = alive_scores[:, None] + log_probs  # (beams, V)
        flat = scores.flatten()
        # the k best extensions, plus up to k more so that k non-eos ones survive even if all k end
        ranked = flat.topk(min(2 * beam_size, int(torch.isfinite(flat).sum()))).indices
        rows, cols = ranked // scores.shape[1], ranked % scores.shape[1]
        ends = cols == eos
        in_top_k = torch.arange(ranked.numel(), device=ranked.device) < beam_size
        for i in torch.nonzero(ends & in_top_k).flatten().tolist():  # eos only from within the top k
            if float(flat[ranked[i]]) > best_score:
                best_score = float(flat[ranked[i]])
                best = torch.cat([alive[rows[i]], alive.new_tensor([eos])])
        keep = torch.nonzero(~ends).flatten()[:beam_size]
        if keep.numel() == 0:
            break
        alive = torch.cat([alive[rows[keep]], cols[keep, None]], dim=1)
        alive_scores = flat[ranked[keep]]
        if best_score >= float(alive_scores.max()):
            break
    if best is not None:
        return best, best_score, True
    return alive[0], float(alive_scores[0]), False


def decoding_transition_matrix(log_probs: Tensor, top_k: int | None = None, top_p: float | None = None,
                               eos: int | None = None, consistent: bool = False) -> Tensor:
    """For a bigram model ``log_probs[a, b] = log p(b | a)``, the matrix of $q(b|a)$ that a
    sampling decoder actually uses (rows renormalised over the candidate set)."""
    logits = filter_logits(log_probs, top_k, top_p, eos if consistent else None)
    return logits.softmax(dim=-1)  # (V, V)


def non_termination_probability(transition: Tensor, start: int, eos: int, steps: int) -> Tensor:
    """Exact $P(\\text{no eos among } y_1..y_t)$ for ``t = 0..steps`` of a Markov chain
    ``transition[a, b] = q(b|a)`` started at token ``start``: $e_{start}^\\top Q^t \\mathbf 1$,
    with $Q$ the chain with the eos column removed. Float64, shape ``(steps + 1,)``."""
    q = transition.double().clone()
    q[:, eos] = 0.0  # paths that emit eos leave the event
    state = torch.zeros(q.shape[0], dtype=torch.float64, device=q.device)
    state[start] = 1.0
    out = [state.sum()]
    for _ in range(steps):
        state = state @ q
        out.append(state.sum())
    return torch.stack(out)


def self_terminating_log_probs(logits: Tensor, eos: int, epsilon: float) -> Tensor:
    """Self-terminating output layer over all positions: logits (..., t, V) -> log-probs (..., t, V).

    The eos slot of step k holds $s_k$, the log-odds of *going on* (as $u_{eos}^\\top h_k$
    in the paper); the other tokens share $\\alpha_t$ through a softmax. A step whose non-eos
    logits are all ``-inf`` puts all its mass on eos.
    """
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must lie in (0, 1), got {epsilon}")
    others = logits.clone()
    others[..., eos] = -math.inf
    nothing_else = ~torch.isfinite(others).any(dim=-1)  # (..., t)
    s = logits[..., eos].masked_fill(nothing_else, -math.inf)  # (..., t)
    # $\log\alpha_t = \sum_{k\le t} [\log(1-\epsilon) + \log\sigma(s_k)]$
    log_alpha = (math.log1p(-epsilon) + torch.nn.functional.logsigmoid(s)).cumsum(dim=-1)  # (..., t)
    # finite placeholder: alpha_t = 0 on such steps, so these entries become -inf below
    others = others.masked_fill(nothing_else[..., None], 0.0)
    # $p(v|y_{<t}) = \alpha_t\,\mathrm{softmax}_{v \ne \text{eos}}$, $p(\text{eos}|y_{<t}) = 1 - \alpha_t$
    out = log_alpha[..., None] + others.log_softmax(dim=-1)  # (..., t, V)
    out[..., eos] = torch.log(-torch.expm1(log_alpha))
    return out


def continue_logits(log_probs: Tensor, eos: int) -> Tensor:
    """Re-express a distribution for :func:`self_terminating_log_probs`: the eos slot becomes
    $s = \\log\\frac{1-p(\\text{eos})}{p(\\text{eos})}$, the other slots stay."""
    out = log_probs.clone()
    log_p_eos = log_probs[..., eos]
    out[..., eos] = torch.log(-torch.expm1(log_p_eos)) - log_p_eos
    return out


def self_terminating(sequence_logits: Callable[[Tensor], Tensor], eos: int, epsilon: float) -> NextLogits:
    """Wrap a model giving logits at every position ``(batch, t) -> (batch, t, V)`` into a
    self-terminating ``next_logits`` (it returns log-probabilities, which are valid logits)."""
    def next_logits(tokens: Tensor) -> Tensor:
        return self_terminating_log_probs(sequence_logits(tokens), eos, epsilon)[:, -1]
    return next_logits


def bigram_lm(log_probs: Tensor) -> Callable[[Tensor], Tensor]:
    """A bigram model as ``sequence_logits``: position t's logits are ``log_probs[y_t]``."""
    def sequence_logits(tokens: Tensor) -> Tensor:
        return log_probs[tokens]  # (batch, t, V)
    return sequence_logits


def looping_toy_model(device: torch.device | str | None = None) -> tuple[list[str], Tensor]:
    """The toy of this page: a word bigram that greedy decoding turns into “今天天气不错不错不错…”.

    Returns ``(vocab, log_probs)`` with ``log_probs[a, b] = log p(b|a)`` (float64). Token 0 is
    ``<bos>``, token 1 is ``<eos>`` (absorbing). The model itself stops with probability 1.
    """
    vocab = ["<bos>", "<eos>", "今天", "天气", "不错", "。"]
    probs = torch.tensor([
        # <bos> <eos> 今天  天气   不错   。
        [0.00, 0.00, 0.90, 0.10, 0.00, 0.00],  # <bos>
        [0.00, 1.00, 0.00, 0.00, 0.00, 0.00],  # <eos>
        [0.00, 0.05, 0.00, 0.65, 0.25, 0.05],  # 今天
        [0.00, 0.05, 0.00, 0.25, 0.60, 0.10],  # 天气
        [0.00, 0.05, 0.00, 0.35, 0.45, 0.15],  # 不错
        [0.00, 0.90, 0.10, 0.00, 0.00, 0.00],  # 。
    ], dtype=torch.float64, device=device)
    return vocab, probs.log()
