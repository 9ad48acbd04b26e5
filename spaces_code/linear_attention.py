r"""Transformer升级之路：3、从Performer到线性Attention — https://kexue.fm/archives/8338

Linear attention in the form of "Transformers are RNNs" (Katharopoulos et al., 2020,
arXiv:2006.16236), seen from Performer (Choromanski et al., 2020, arXiv:2009.14794). With feature maps
$\phi, \varphi$ the article writes

$$
Attention(Q,K,V)_i = \frac{\sum_{j=1}^n \phi(q_i)^\top\varphi(k_j)\,v_j}{\sum_{j=1}^n \phi(q_i)^\top\varphi(k_j)}
                   = \frac{\phi(q_i)^\top \sum_j \varphi(k_j) v_j^\top}{\phi(q_i)^\top \sum_j \varphi(k_j)},
$$

and computing the sums first makes the cost $\mathscr{O}(n)$ instead of $\mathscr{O}(n^2)$. For a
causal (unidirectional) model the sums run over $j \le i$, i.e. they are prefix sums
$S_i = \sum_{j\le i}\varphi(k_j)v_j^\top$, $z_i = \sum_{j\le i}\varphi(k_j)$.

This module holds the one prefix-sum implementation of the project; :mod:`spaces_code.performer`
plugs its random features into it. :func:`quadratic_feature_attention` is the $\mathscr{O}(n^2)$
masked form of the same formula, kept as the reference the prefix sums must equal. The attention matrix
$\phi(Q)\varphi(K)^\top$ has rank at most the feature dimension $m$ — the "low rank" limitation the
article discusses; :func:`attention_matrix_rank` measures it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    r"""$\phi(x) = \mathrm{elu}(x) + 1 > 0$ (Katharopoulos et al.)."""
    return F.elu(x) + 1.0


def feature_map_attention(q_features: Tensor, k_features: Tensor, v: Tensor,
                          causal: bool = False, eps: float = 1e-12) -> Tensor:
    r"""Linear attention from precomputed non-negative features.

    ``q_features`` $\phi(Q)$ is ``(..., n_q, m)``, ``k_features`` $\varphi(K)$ is
    ``(..., n_k, m)``, ``v`` is ``(..., n_k, d_v)``; returns ``(..., n_q, d_v)``. ``causal=True`` needs
    ``n_q == n_k`` and uses prefix sums, so position ``i`` only sees ``j <= i``. ``eps`` guards the
    division when all features of a row underflow to zero.
    """
    if causal:
        return causal_feature_map_attention(q_features, k_features, v, eps=eps)
    # $\sum_j \varphi(k_j) v_j^\top$ and $\sum_j \varphi(k_j)$, computed once for all queries
    kv = k_features.transpose(-2, -1) @ v  # (..., m, d_v)
    k_sum = k_features.sum(dim=-2)  # (..., m)
    numerator = q_features @ kv  # (..., n_q, d_v)
    denominator = (q_features * k_sum.unsqueeze(-2)).sum(dim=-1, keepdim=True)  # (..., n_q, 1)
    return numerator / denominator.clamp_min(eps)


def causal_feature_map_attention(q_features: Tensor, k_features: Tensor, v: Tensor,
                                 eps: float = 1e-12, chunk_size: int = 64) -> Tensor:
    r"""Causal linear attention by prefix sums (the RNN form of the article's formula):

    $$out_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i},\quad
      S_i = S_{i-1} + \varphi(k_i)v_i^\top,\quad z_i = z_{i-1} + \varphi(k_i).$$

    The running sums are taken chunk by chunk: $S$ at the start of each chunk of ``chunk_size``
    positions is a prefix sum over the previous chunks, and inside a chunk the few remaining terms
    $j \le i$ are added directly. ``chunk_size=1`` is the plain per-position recurrence; larger
    chunks give the same result with ``n / chunk_size`` stored states instead of ``n``.
    """
    n = q_features.shape[-2]
    if k_features.shape[-2] != n:
        raise ValueError("causal attention needs as many queries as keys "
                         f"(got {n} and {k_features.shape[-2]})")
    c = max(1, min(chunk_size, n))
    pad = (-n) % c  # zero features at the end add nothing to any sum; their outputs are dropped
    qc, kc, vc = (F.pad(t, (0, 0, 0, pad)).unflatten(-2, (-1, c)) for t in (q_features, k_features, v))
    # qc, kc: (..., chunks, c, m); vc: (..., chunks, c, d_v)
    chunk_kv = kc.transpose(-2, -1) @ vc  # (..., chunks, m, d_v): sum of phi(k_j) v_j^T in each chunk
    chunk_k = kc.sum(dim=-2)  # (..., chunks, m)
    # $S$, $z$ before each chunk: exclusive prefix sums over chunks
    prev_kv = _exclusive_cumsum(chunk_kv.flatten(-2), dim=-2).reshape(chunk_kv.shape)  # (.., chunks, m, d_v)
    prev_k = _exclusive_cumsum(chunk_k, dim=-2)  # (..., chunks, m)
    # the terms $j \le i$ inside the chunk
    causal = torch.ones(c, c, dtype=torch.bool, device=q_features.device).tril()
    local = (qc @ kc.transpose(-2, -1)).masked_fill(~causal, 0.0)  # (..., chunks, c, c)
    # $\phi(q_i)^\top S_i$ and $\phi(q_i)^\top z_i$
    numerator = qc @ prev_kv + local @ vc  # (..., chunks, c, d_v)
    denominator = (qc * prev_k.unsqueeze(-2)).sum(dim=-1, keepdim=True) + local.sum(dim=-1, keepdim=True)
    out = numerator / denominator.clamp_min(eps)
    return out.flatten(-3, -2)[..., :n, :]  # (..., n, d_v)


def _exclusive_cumsum(x: Tensor, dim: int) -> Tensor:
    r"""$y_t = \sum_{s<t} x_s$ along ``dim`` (computed with the scan axis last, where torch's CPU
    cumsum is fast)."""
    x = x.movedim(dim, -1)
    inclusive = x.reshape(-1, x.shape[-1]).cumsum(dim=-1).view(x.shape)
    return F.pad(inclusive, (1, -1)).movedim(-1, dim)


def quadratic_feature_attention(q_features: Tensor, k_features: Tensor, v: Tensor,
                                mask: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    r"""The same attention in $\mathscr{O}(n^2)$ form: form
    $A = \phi(Q)\varphi(K)^\top \odot M$, normalise its rows, multiply by ``V``.
    ``mask`` (True = may attend) broadcasts to ``(..., n_q, n_k)``."""
    # $A_{ij} = \phi(q_i)^\top \varphi(k_j)$
    scores = q_features @ k_features.transpose(-2, -1)  # (..., n_q, n_k)
    if mask is not None:
        scores = scores.masked_fill(~mask.to(device=scores.device, dtype=torch.bool), 0.0)
    return (scores @ v) / scores.sum(dim=-1, keepdim=True).clamp_min(eps)


def linear_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> Tensor:
    r"""Linear attention with $\phi = \varphi = \mathrm{elu} + 1$; ``q, k`` are
    ``(..., n, d)``, ``v`` is ``(..., n, d_v)``."""
    return feature_map_attention(elu_feature_map(q), elu_feature_map(k), v, causal=causal)


def attention_matrix_rank(q_features: Tensor, k_features: Tensor, rtol: float = 1e-6) -> int:
    r"""Numerical rank of the unnormalised attention matrix $\phi(Q)\varphi(K)^\top$
    (a single ``(n, m)`` pair); it never exceeds ``m``."""
    scores = (q_features @ k_features.transpose(-2, -1)).double()  # (n_q, n_k)
    return int(torch.linalg.matrix_rank(scores, rtol=rtol))
