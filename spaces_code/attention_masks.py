r"""从语言模型到Seq2Seq：Transformer如戏，全靠Mask — https://kexue.fm/archives/6933

The article's point: one Transformer, four pre-training schemes, and the only thing that changes is the
mask applied to the attention matrix. Papers: BERT (Devlin et al., 2018), GPT (Radford et al., 2018),
UniLM (Dong et al., 2019, arXiv:1905.03197) and XLNet (Yang et al., 2019, arXiv:1906.08237).

Scaled dot-product attention with a mask $M$ (True = may attend):

$$
\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + \log M\right) V,
\qquad \log M_{ij} = 0 \text{ if } M_{ij} \text{ else } -\infty
$$

All masks are boolean tensors of shape ``(n, n)``: entry ``[i, j]`` says whether query ``i`` may see key
``j``. Because masked scores are set to $-\infty$, their softmax weight is exactly zero, and so is
the gradient of output ``i`` with respect to input ``j`` (tested in ``tests/test_attention_masks.py``).
XLNet has two streams: the content stream (``permutation_mask(order, include_self=True)``) sees its own
token, the query stream that predicts it (``include_self=False``) does not.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def bidirectional_mask(n: int, device: torch.device | str | None = None) -> Tensor:
    """BERT (masked LM): every token sees every token."""
    return torch.ones(n, n, dtype=torch.bool, device=device)


def causal_mask(n: int, device: torch.device | str | None = None) -> Tensor:
    """GPT (unidirectional LM): token ``i`` sees tokens ``j <= i`` (lower triangle with diagonal)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def prefix_lm_mask(n_prefix: int, n: int, device: torch.device | str | None = None) -> Tensor:
    """UniLM Seq2Seq: the first ``n_prefix`` tokens (the source) see each other bidirectionally and
    never the target; target tokens see the whole source and the target causally."""
    if not 0 <= n_prefix <= n:
        raise ValueError(f"n_prefix must lie in [0, n], got n_prefix={n_prefix}, n={n}")
    mask = causal_mask(n, device=device)  # (n, n)
    mask[:n_prefix, :n_prefix] = True
    return mask


def permutation_mask(order: Tensor, include_self: bool = True) -> Tensor:
    """XLNet permutation LM: a causal mask in the order ``order`` instead of left to right.

    ``order`` is a permutation of ``0..n-1``; ``order[t]`` is the position predicted at step ``t``.
    Position ``i`` sees position ``j`` iff ``j`` comes no later than ``i`` in ``order``: the *content
    stream*, which may see its own token (``include_self=True``). The *query stream*, which predicts the
    token and so must not see it, sees strictly earlier steps only (``include_self=False``); the first
    step of the order sees nothing there. Shape ``(n, n)``, on ``order.device``. With
    ``order = arange(n)`` the content stream is :func:`causal_mask`.
    """
    if order.dim() != 1:
        raise ValueError(f"order must be 1-D, got shape {tuple(order.shape)}")
    n = order.numel()
    order = order.long()
    if not torch.equal(order.sort().values, torch.arange(n, device=order.device)):
        raise ValueError("order must be a permutation of 0..n-1")
    # rank[p] = step at which position p is generated
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=order.device)
    if include_self:
        return rank[None, :] <= rank[:, None]  # (n, n)
    return rank[None, :] < rank[:, None]


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Scaled dot-product attention; ``mask`` (True = may attend) broadcasts to ``(..., n_q, n_k)``.

    ``q`` is ``(..., n_q, d)``, ``k`` is ``(..., n_k, d)``, ``v`` is ``(..., n_k, d_v)``; returns
    ``(..., n_q, d_v)``. A query row whose mask is all False returns zeros (and passes no gradient)
    instead of the NaN a plain softmax over all ``-inf`` would give.
    """
    # $s_{ij} = q_i \cdot k_j / \sqrt{d_k}$
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., n_q, n_k)
    if mask is None:
        return torch.softmax(scores, dim=-1) @ v
    mask = mask.to(device=scores.device, dtype=torch.bool).expand_as(scores)
    row_has_key = mask.any(dim=-1, keepdim=True)  # (..., n_q, 1)
    # empty rows are made all-visible so the softmax stays finite, then zeroed below
    visible = mask | ~row_has_key
    # $\mathrm{softmax}(s + \log M)$: forbidden scores become $-\infty$, i.e. weight exactly 0
    weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)  # (..., n_q, n_k)
    weights = weights * row_has_key
    return weights @ v  # (..., n_q, d_v)
