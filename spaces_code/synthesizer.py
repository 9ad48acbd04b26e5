r"""Google新作Synthesizer：我们还不够了解自注意力 — https://kexue.fm/archives/7430

Paper: Tay, Bahri, Metzler, Juan, Zhao and Zheng, "Synthesizer: Rethinking Self-Attention in
Transformer Models" (2020, arXiv:2005.00743).

Self-attention mixes the values with weights computed from token pairs, $\mathrm{softmax}(B)\,G(X)$
with $B_{ij} = q_i\cdot k_j/\sqrt{d_k}$ (dot product). The Synthesizer asks whether the token-token
interaction is needed and *synthesizes* $B$ instead:

$$
\text{Dense:}\quad B_i = W_2\,\mathrm{ReLU}(W_1 x_i + b_1) + b_2 \in \mathbb{R}^{\ell},
\qquad
\text{Random:}\quad B = R \in \mathbb{R}^{\ell\times\ell},
\qquad Y = \mathrm{softmax}(B)\,G(X),
$$

and the paper's mixtures add several of them with learnable weights summing to one,
$B = \alpha_1 R + \alpha_2\,QK^\top/\sqrt{d_k}$ (:class:`MixtureSynthesizer`).

Dense: each row of the attention matrix depends on one token only. Random: the attention matrix is a
(trainable or fixed) parameter, independent of the input. $\ell$ is the maximal length; a sequence of
length $n \le \ell$ uses the leading $n\times n$ block. A mask (True = may attend; e.g. causal for a
language model) is applied to $B$ before the softmax in all of them. Every module maps
``(batch, n, d) -> (batch, n, d)`` with ``n_head`` heads; every constructor draws its parameters from
its ``generator`` alone. The article's question, when is the token-token interaction needed, is put to
the test by :mod:`spaces_code.synthesizer_recall` (associative recall).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spaces_code import randomness
from spaces_code.attention_masks import attention


def mix(logits: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""$\mathrm{softmax}(B + \log M)\,V$ for synthesized logits ``B`` (..., n, n) and values
    (..., n, d_v). Same masking convention as :func:`spaces_code.attention_masks.attention`: with
    $B = QK^\top/\sqrt{d}$ this *is* that function, which is used for the computation."""
    n = logits.shape[-1]
    # attention(q, k = I, v) computes softmax(q I / sqrt(n)) v, so q = sqrt(n) B gives softmax(B) v
    eye = torch.eye(n, dtype=logits.dtype, device=logits.device)
    return attention(logits * math.sqrt(n), eye, v, mask)


def _dot_logits(qk: nn.Linear, x: Tensor, n_head: int) -> Tensor:
    b, n, d = x.shape
    q, k = qk(x).view(b, n, 2, n_head, d // n_head).permute(2, 0, 3, 1, 4)  # (b, h, n, d_h) each
    # $B_{ij} = q_i \cdot k_j / \sqrt{d_k}$
    return q @ k.transpose(-2, -1) / math.sqrt(d // n_head)  # (b, h, n, n)


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

    def attention_weights(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""The mixing matrix $\mathrm{softmax}(B + \log M)$, shape (batch, heads, n, n)."""
        logits = self.logits(x).expand(x.shape[0], -1, -1, -1)  # Random: one matrix for the whole batch
        return mix(logits, torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device), mask)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        v = self.value(x).view(b, n, self.n_head, d // self.n_head).transpose(1, 2)  # (b, h, n, d_h)
        # $Y = \mathrm{softmax}(B)\,G(X)$
        y = mix(self.logits(x), v, mask)  # (b, h, n, d_h)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class DotProductAttention(_Mixer):
    r"""Standard multi-head self-attention, $B_{ij} = q_i \cdot k_j / \sqrt{d_k}$."""

    def __init__(self, d: int, n_head: int = 1, generator: torch.Generator | None = None):
        super().__init__(d, n_head)
        self.qk = nn.Linear(d, 2 * d)
        randomness.init_parameters_(self, generator)

    def logits(self, x: Tensor) -> Tensor:
        return _dot_logits(self.qk, x, self.n_head)


class DenseSynthesizer(_Mixer):
    r"""Dense Synthesizer: row i of ``B`` is an MLP of $x_i$ alone."""

    def __init__(self, d: int, max_len: int, n_head: int = 1, generator: torch.Generator | None = None):
        super().__init__(d, n_head)
        self.max_len = max_len
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, n_head * max_len)
        randomness.init_parameters_(self, generator)

    def logits(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        if n > self.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len={self.max_len}")
        # $B_i = W_2\,\mathrm{ReLU}(W_1 x_i + b_1) + b_2$, keeping the first n of its max_len entries
        rows = self.w2(torch.relu(self.w1(x))).view(b, n, self.n_head, self.max_len)  # (b, n, h, max_len)
        return rows[..., :n].transpose(1, 2)  # (b, h, n, n)


def _random_logits(n_head: int, max_len: int, trainable: bool, module: nn.Module,
                   generator: torch.Generator | None) -> None:
    r"""Registers ``R`` (heads, max_len, max_len), $R_{ij} \sim \mathcal{N}(0, 1)$, on ``module``."""
    r = randomness.randn(n_head, max_len, max_len, generator=generator, device=module.value.weight.device)
    if trainable:
        module.r = nn.Parameter(r)
    else:
        module.register_buffer("r", r)


def _leading_block(r: Tensor, n: int) -> Tensor:
    if n > r.shape[-1]:
        raise ValueError(f"sequence length {n} exceeds max_len={r.shape[-1]}")
    return r[None, :, :n, :n]  # (1, h, n, n)


class RandomSynthesizer(_Mixer):
    """Random Synthesizer: ``B = R``, a parameter (``trainable=False``: a fixed random buffer)."""

    def __init__(self, d: int, max_len: int, n_head: int = 1, trainable: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__(d, n_head)
        randomness.init_parameters_(self, generator)
        _random_logits(n_head, max_len, trainable, self, generator)

    def logits(self, x: Tensor) -> Tensor:
        # $B = R$: the same for every input
        return _leading_block(self.r, x.shape[1])


class MixtureSynthesizer(_Mixer):
    r"""Random + dot product (the paper's "R+V"): $B = \alpha_1 R + \alpha_2\,QK^\top/\sqrt{d_k}$ with
    $(\alpha_1, \alpha_2) = \mathrm{softmax}(a)$ learnable (equal at initialisation)."""

    def __init__(self, d: int, max_len: int, n_head: int = 1, generator: torch.Generator | None = None):
        super().__init__(d, n_head)
        self.qk = nn.Linear(d, 2 * d)
        randomness.init_parameters_(self, generator)
        _random_logits(n_head, max_len, True, self, generator)
        self.mixture = nn.Parameter(torch.zeros(2, device=self.value.weight.device))  # a

    def logits(self, x: Tensor) -> Tensor:
        alpha = self.mixture.softmax(0)
        # $B = \alpha_1 R + \alpha_2\,QK^\top/\sqrt{d_k}$, $\alpha_1 + \alpha_2 = 1$
        return alpha[0] * _leading_block(self.r, x.shape[1]) + alpha[1] * _dot_logits(self.qk, x, self.n_head)


class TinyTagger(nn.Module):
    """Token + position embedding, one mixing layer with a residual, and a linear read-out: ids
    (batch, n) -> logits (batch, n, vocab). ``mixer`` is any of the modules above (it keeps its own
    parameters; ``generator`` draws the embeddings and the read-out)."""

    def __init__(self, vocab_size: int, max_len: int, d: int, mixer: nn.Module,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(max_len, d)
        self.mixer = mixer
        self.head = nn.Linear(d, vocab_size)
        for layer in (self.tok, self.pos, self.head):
            randomness.init_parameters_(layer, generator)

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))  # (batch, n, d)
        return self.head(h + self.mixer(h, mask))
