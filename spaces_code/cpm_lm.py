r"""跟风玩玩目前最大的中文GPT2模型（bert4keras） — https://kexue.fm/archives/7912

Model: CPM-LM of the 清源 CPM project, Zhang et al., "CPM: A Large-scale Generative Chinese Pre-trained
Language Model" (2020, arXiv:2012.00413): a GPT-2 (Radford et al., 2019) with 32 layers, hidden size
2560, 32 heads, a 30000-token vocabulary and 1024 positions — about 2.6 billion parameters.

A GPT-2 block is pre-LayerNorm, with a causal self-attention and a 4x MLP, each inside a residual:

$$
h \leftarrow h + \mathrm{Attention}(\mathrm{LN}(h)),\qquad
h \leftarrow h + W_2\,\mathrm{GELU}(W_1\,\mathrm{LN}(h)),
$$

and the output projection shares the token embedding. Counting every weight and bias gives

$$
N = \underbrace{(V + P)\,d}_{\text{embeddings}}
  + L\,\underbrace{(12d^2 + 13d)}_{\text{per block}} + \underbrace{2d}_{\text{final LN}},
$$

with $V$ the vocabulary, $P$ the positions, $d$ the width and $L$ the layers (an untied output layer
adds $Vd$). :func:`count_parameters` evaluates it; the tests check it
against ``sum(p.numel())`` of an instantiated small :class:`GPT2LM`. No CPM weights are downloaded here:
the page trains a tiny model of the same family and samples from it with a few-shot prompt.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spaces_code import randomness
from spaces_code.attention_masks import attention, causal_mask


@dataclass
class GPT2Config:
    vocab_size: int = 30000  # CPM's SentencePiece vocabulary
    n_positions: int = 1024  # context length
    n_layer: int = 32  # transformer blocks
    n_embd: int = 2560  # hidden size d
    n_head: int = 32  # heads, each of size d / n_head
    mlp_ratio: int = 4  # MLP width = mlp_ratio * d
    tie_embeddings: bool = True  # output layer = transposed token embedding


def count_parameters(config: GPT2Config) -> int:
    """Exact number of trainable parameters of :class:`GPT2LM` built from ``config``."""
    d, m = config.n_embd, config.mlp_ratio * config.n_embd
    embeddings = (config.vocab_size + config.n_positions) * d
    # attention: W_qkv (d x 3d) + 3d bias, W_o (d x d) + d bias; MLP: d x m + m, m x d + d; two LNs: 4d
    per_block = (3 * d * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d) + 4 * d
    # $N = (V + P)d + L(12d^2 + 13d) + 2d$ (for m = 4d), plus Vd when the output layer is untied
    untied_head = 0 if config.tie_embeddings else config.vocab_size * d
    return embeddings + config.n_layer * per_block + 2 * d + untied_head


class SelfAttention(nn.Module):
    """Multi-head self-attention; ``mask`` (True = may attend) broadcasts to (batch, heads, n, n) and
    defaults to the causal mask of a language model."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        if d % n_head:
            raise ValueError(f"n_embd={d} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        mask = causal_mask(n, device=x.device) if mask is None else mask
        y = attention(q, k, v, mask)  # (b, heads, n, d_head)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(d, hidden)
        self.proj = nn.Linear(hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        # $W_2\,\mathrm{GELU}(W_1 x)$
        return self.proj(nn.functional.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LN GPT-2 block."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        d = config.n_embd
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = SelfAttention(d, config.n_head)
        self.mlp = MLP(d, config.mlp_ratio * d)

    def forward(self, h: Tensor) -> Tensor:
        # $h \leftarrow h + \mathrm{Attention}(\mathrm{LN}(h))$, then the same with the MLP
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class GPT2LM(nn.Module):
    """GPT-2 language model: ids (batch, n) -> next-token logits (batch, n, vocab); every weight is drawn
    from ``generator`` (the global RNG only when it is None)."""

    def __init__(self, config: GPT2Config, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = None if config.tie_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        with torch.no_grad():  # GPT-2 initialisation: N(0, 0.02) weights, zero biases, from `generator`
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    # $W \sim \mathcal{N}(0, 0.02^2)$
                    module.weight.copy_(0.02 * randomness.randn(*module.weight.shape, generator=generator,
                                                                device=module.weight.device))
                if isinstance(module, nn.Linear) and module.bias is not None:
                    module.bias.zero_()

    def forward(self, ids: Tensor) -> Tensor:
        n = ids.shape[1]
        if n > self.config.n_positions:
            raise ValueError(f"sequence of length {n} exceeds n_positions={self.config.n_positions}")
        h = self.wte(ids) + self.wpe(torch.arange(n, device=ids.device))  # (batch, n, d)
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        return h @ self.wte.weight.T if self.head is None else self.head(h)  # (batch, n, vocab)

    def next_logits(self, ids: Tensor) -> Tensor:
        """Logits of the next token (batch, vocab), seeing the last ``n_positions`` tokens; this is
        the ``next_logits`` that the decoders of :mod:`spaces_code.decoding` take."""
        return self(ids[:, -self.config.n_positions:])[:, -1]
