r"""基于Conditional Layer Normalization的条件文本生成 — https://kexue.fm/archives/7124

Conditional Layer Normalization (the article's method, also used by bert4keras): a condition vector
$c$ (a class embedding, an image feature, ...) enters a pretrained Transformer only through the
$\beta$ and $\gamma$ of its LayerNorms. The idea comes from conditional BatchNorm /
AdaIN in conditional image generation (e.g. de Vries et al., 2017; Huang and Belongie, 2017).

$$y = \gamma(c) \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta(c),\qquad
\gamma(c) = \gamma + W_\gamma c,\quad \beta(c) = \beta + W_\beta c,$$

with $\mu, \sigma^2$ the mean and variance over the last dimension of $x$. The dense layers
$W_\gamma, W_\beta$ start at **zero**, so at initialisation the layer is exactly the pretrained
LayerNorm ($\gamma, \beta$) whatever the condition: conditioning is learned without disturbing
the pretrained model at step 0. Optionally $c$ first goes through a dense layer to a smaller size
(bert4keras' ``hidden_units``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from spaces_code.cpm_lm import MLP, SelfAttention
from spaces_code.randomness import init_parameters_


class ConditionalLayerNorm(nn.Module):
    """LayerNorm over the last dimension ``dim`` whose gain and bias depend on ``cond`` (batch, cond_dim)."""

    def __init__(self, dim: int, cond_dim: int, hidden_dim: int | None = None, eps: float = 1e-5,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))  # the (pretrained) LayerNorm gain
        self.beta = nn.Parameter(torch.zeros(dim))  # the (pretrained) LayerNorm bias
        self.hidden = None if hidden_dim is None else init_parameters_(
            nn.Linear(cond_dim, hidden_dim, bias=False), generator)  # the only random weights
        width = cond_dim if hidden_dim is None else hidden_dim
        self.gamma_dense = nn.Linear(width, dim, bias=False)
        self.beta_dense = nn.Linear(width, dim, bias=False)
        nn.init.zeros_(self.gamma_dense.weight)  # zero: starts as the plain LayerNorm
        nn.init.zeros_(self.beta_dense.weight)

    @classmethod
    def from_layer_norm(cls, layer_norm: nn.LayerNorm, cond_dim: int, hidden_dim: int | None = None,
                        generator: torch.Generator | None = None) -> "ConditionalLayerNorm":
        """Wrap a (pretrained) LayerNorm: its gain and bias become $\\gamma, \\beta$, so the new
        layer computes exactly what the old one did until $W_\\gamma, W_\\beta$ are trained."""
        if len(layer_norm.normalized_shape) != 1 or not layer_norm.elementwise_affine:
            raise ValueError("only a LayerNorm over the last dimension with gain and bias can be wrapped")
        dim = layer_norm.normalized_shape[0]
        cln = cls(dim, cond_dim, hidden_dim, eps=layer_norm.eps, generator=generator).to(layer_norm.weight.device)
        with torch.no_grad():
            cln.gamma.copy_(layer_norm.weight)
            if layer_norm.bias is not None:
                cln.beta.copy_(layer_norm.bias)
        return cln

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        c = cond if self.hidden is None else self.hidden(cond)  # (batch, width)
        # $\gamma(c) = \gamma + W_\gamma c$, $\beta(c) = \beta + W_\beta c$
        gamma = self.gamma + self.gamma_dense(c)  # (batch, dim)
        beta = self.beta + self.beta_dense(c)  # (batch, dim)
        shape = (c.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)  # broadcast over (n, ...)
        x_hat = nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)  # (batch, ..., dim)
        # $y = \gamma(c) \odot (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta(c)$
        return gamma.view(shape) * x_hat + beta.view(shape)


class ConditionalBlock(nn.Module):
    """Pre-LN GPT-2 block whose two LayerNorms are conditional."""

    def __init__(self, dim: int, n_head: int, cond_dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.ln1 = ConditionalLayerNorm(dim, cond_dim)
        self.ln2 = ConditionalLayerNorm(dim, cond_dim)
        self.attn = init_parameters_(SelfAttention(dim, n_head), generator)
        self.mlp = init_parameters_(MLP(dim, 4 * dim), generator)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        h = h + self.attn(self.ln1(h, cond))
        return h + self.mlp(self.ln2(h, cond))


class ConditionalLM(nn.Module):
    """A small causal LM conditioned on ``cond`` (batch, cond_dim) only through its LayerNorms.

    ids (batch, n) -> next-token logits (batch, n, vocab).
    """

    def __init__(self, vocab_size: int, cond_dim: int, n_positions: int = 32, dim: int = 32,
                 n_head: int = 4, n_layer: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        self.wte = init_parameters_(nn.Embedding(vocab_size, dim), generator)
        self.wpe = init_parameters_(nn.Embedding(n_positions, dim), generator)
        self.blocks = nn.ModuleList(ConditionalBlock(dim, n_head, cond_dim, generator) for _ in range(n_layer))
        self.ln_f = ConditionalLayerNorm(dim, cond_dim)
        self.head = init_parameters_(nn.Linear(dim, vocab_size), generator)

    def forward(self, ids: Tensor, cond: Tensor) -> Tensor:
        h = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))  # (batch, n, dim)
        for block in self.blocks:
            h = block(h, cond)
        return self.head(self.ln_f(h, cond))  # (batch, n, vocab)
