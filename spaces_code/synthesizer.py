r"""Google新作Synthesizer：我们还不够了解自注意力 — https://kexue.fm/archives/7430

Paper: Tay, Bahri, Metzler, Juan, Zhao and Zheng, "Synthesizer: Rethinking Self-Attention in
Transformer Models" (2020, arXiv:2005.00743).

Self-attention mixes the values with weights computed from token pairs, :math:`\mathrm{softmax}(B)\,G(X)`
with :math:`B_{ij} = q_i\cdot k_j/\sqrt{d_k}` (dot product). The Synthesizer asks whether the
token-token interaction is needed and *synthesizes* :math:`B` instead:

.. math::

    \text{Dense:}\quad B_i = W_2\,\mathrm{ReLU}(W_1 x_i + b_1) + b_2 \in \mathbb{R}^{\ell},
    \qquad
    \text{Random:}\quad B = R \in \mathbb{R}^{\ell\times\ell},
    \qquad Y = \mathrm{softmax}(B)\,G(X).

Dense: each row of the attention matrix depends on one token only. Random: the attention matrix is a
(trainable or fixed) parameter, independent of the input. :math:`\ell` is the maximal length; a
sequence of length :math:`n \le \ell` uses the leading :math:`n\times n` block. A mask (True = may
attend; e.g. causal for a language model) is applied to :math:`B` before the softmax in all three.
Every module maps ``(batch, n, d) -> (batch, n, d)`` with ``n_head`` heads.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spaces_code.attention_masks import attention


def mix(logits: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """:math:`\\mathrm{softmax}(B + \\log M)\\,V` for synthesized logits ``B`` (..., n, n) and values
    (..., n, d_v). Same masking convention as :func:`spaces_code.attention_masks.attention`: with
    :math:`B = QK^\\top/\\sqrt{d}` this *is* that function, which is used for the computation."""
    n = logits.shape[-1]
    # attention(q, k = I, v) computes softmax(q I / sqrt(n)) v, so q = sqrt(n) B gives softmax(B) v
    eye = torch.eye(n, dtype=logits.dtype, device=logits.device)
    return attention(logits * math.sqrt(n), eye, v, mask)


class _Mixer(nn.Module):
    """Shared value/output projections; subclasses supply the logits ``B`` (batch | 1, heads, n, n)."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        if d % n_head:
            raise ValueError(f"d={d} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.value = nn.Linear(d, d)  # G(X)
        self.out = nn.Linear(d, d)

    def logits(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        v = self.value(x).view(b, n, self.n_head, d // self.n_head).transpose(1, 2)  # (b, h, n, d_h)
        # $Y = \mathrm{softmax}(B)\,G(X)$
        y = mix(self.logits(x), v, mask)  # (b, h, n, d_h)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class DotProductAttention(_Mixer):
    """Standard multi-head self-attention, :math:`B_{ij} = q_i \\cdot k_j / \\sqrt{d_k}`."""

    def __init__(self, d: int, n_head: int = 1):
        super().__init__(d, n_head)
        self.qk = nn.Linear(d, 2 * d)

    def logits(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k = self.qk(x).view(b, n, 2, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        # $B_{ij} = q_i \cdot k_j / \sqrt{d_k}$
        return q @ k.transpose(-2, -1) / math.sqrt(d // self.n_head)  # (b, h, n, n)


class DenseSynthesizer(_Mixer):
    """Dense Synthesizer: row i of ``B`` is an MLP of :math:`x_i` alone."""

    def __init__(self, d: int, max_len: int, n_head: int = 1):
        super().__init__(d, n_head)
        self.max_len = max_len
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, n_head * max_len)

    def logits(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        if n > self.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len={self.max_len}")
        # $B_i = W_2\,\mathrm{ReLU}(W_1 x_i + b_1) + b_2$, keeping the first n of its max_len entries
        rows = self.w2(torch.relu(self.w1(x))).view(b, n, self.n_head, self.max_len)  # (b, n, h, max_len)
        return rows[..., :n].transpose(1, 2)  # (b, h, n, n)


class RandomSynthesizer(_Mixer):
    """Random Synthesizer: ``B = R``, a parameter (``trainable=False``: a fixed random buffer)."""

    def __init__(self, d: int, max_len: int, n_head: int = 1, trainable: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__(d, n_head)
        r = torch.randn(n_head, max_len, max_len, generator=generator)
        if trainable:
            self.r = nn.Parameter(r)
        else:
            self.register_buffer("r", r)

    def logits(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        if n > self.r.shape[-1]:
            raise ValueError(f"sequence length {n} exceeds max_len={self.r.shape[-1]}")
        # $B = R$: the same for every input
        return self.r[None, :, :n, :n]  # (1, h, n, n)


class TinyTagger(nn.Module):
    """Token + position embedding, one mixing layer with a residual, and a linear read-out: ids
    (batch, n) -> logits (batch, n, vocab). ``mixer`` is any of the three modules above."""

    def __init__(self, vocab_size: int, max_len: int, d: int, mixer: nn.Module):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(max_len, d)
        self.mixer = mixer
        self.head = nn.Linear(d, vocab_size)

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))  # (batch, n, d)
        return self.head(h + self.mixer(h, mask))
