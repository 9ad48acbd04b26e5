r"""积分梯度：一种新颖的神经网络可视化方法 — https://kexue.fm/archives/7533

Papers: M. Sundararajan, A. Taly, Q. Yan, "Gradients of Counterfactuals" (arXiv:1611.02639) and
"Axiomatic Attribution for Deep Networks" (ICML 2017, arXiv:1703.01365).

The article's view: the plain gradient $\nabla_x F(x)$ only describes $F$ near $x$ and vanishes where the
model saturates. Instead compare $x$ with a reference $\bar{x}$ (the baseline) along the straight path
$\bar{x} + \alpha(x - \bar{x})$; by the fundamental theorem of calculus

$$F(x) - F(\bar{x}) = \sum_i \underbrace{(x_i - \bar{x}_i)\int_0^1
\frac{\partial F}{\partial x_i}\big(\bar{x} + \alpha(x - \bar{x})\big)\,d\alpha}_{\text{IG}_i},$$

so the attributions $\text{IG}_i$ add up exactly to the change of the output ("completeness"). The
integral is evaluated by the midpoint rule with ``steps`` points, whose error is $O(1/\text{steps}^2)$.

For text, $x$ is the sequence of token embeddings (baseline: zeros) and a token's importance is the sum
of its embedding's attributions — the heat map of the article ("越红的token越重要").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

BatchFn = Callable[[Tensor], Tensor]


def integrated_gradients(f: BatchFn, x: Tensor, baseline: Tensor | None = None, steps: int = 64) -> Tensor:
    r"""Midpoint rule with $\alpha_s = (s - 1/2)/S$:
    $\text{IG}_i = (x_i - \bar{x}_i)\frac{1}{S}\sum_{s=1}^{S}\partial_i F(\bar{x} + \alpha_s(x - \bar{x}))$.

    ``f`` maps a batch (B, *x.shape) to B scalars (B,); ``x`` and ``baseline`` (default zeros) carry no
    batch dimension. Returns attributions shaped like ``x`` with ``attr.sum() ≈ f(x) - f(baseline)``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    baseline = torch.zeros_like(x) if baseline is None else baseline.to(x)
    if baseline.shape != x.shape:
        raise ValueError(f"baseline shape {tuple(baseline.shape)} differs from x shape {tuple(x.shape)}")
    # midpoints $\alpha_s = (s - 1/2)/S$
    alphas = (torch.arange(steps, device=x.device, dtype=x.dtype) + 0.5) / steps  # (S,)
    alphas = alphas.reshape(steps, *([1] * x.dim()))  # (S, 1, ..., 1)
    with torch.enable_grad():
        path = (baseline + alphas * (x - baseline)).detach().requires_grad_(True)  # (S, *x.shape)
        outputs = f(path)
        if outputs.shape != (steps,):
            raise ValueError(f"f must map a batch of {steps} inputs to shape ({steps},), got {tuple(outputs.shape)}")
        grads = torch.autograd.grad(outputs.sum(), path)[0]  # (S, *x.shape)
    # $(x - \bar{x}) \odot \int_0^1 \nabla F\, d\alpha$
    return ((x - baseline) * grads.mean(0)).detach()


def gradient_times_input(f: BatchFn, x: Tensor) -> Tensor:
    r"""The naive saliency $x \odot \nabla_x F(x)$, which the article improves on (same conventions as IG)."""
    with torch.enable_grad():
        point = x.detach()[None].requires_grad_(True)  # (1, *x.shape)
        grad = torch.autograd.grad(f(point).sum(), point)[0][0]
    return (x * grad).detach()


@dataclass
class SentimentConfig:
    vocab_size: int = 24
    embed_dim: int = 16
    hidden: int = 32
    length: int = 10  # tokens per sentence


class TokenSentimentModel(nn.Module):
    r"""Embeddings $e_t$ → $\tanh(W e_t + b)$ per token → mean over tokens → logit of "positive"."""

    def __init__(self, config: SentimentConfig, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, device=device)
        self.token_mlp = nn.Linear(config.embed_dim, config.hidden, device=device)
        self.readout = nn.Linear(config.hidden, 1, device=device)
        # seeded initialisation: N(0, 1) embeddings, N(0, 1/fan_in) weights, zero biases
        nn.init.normal_(self.embedding.weight, generator=generator)
        for layer in (self.token_mlp, self.readout):
            nn.init.normal_(layer.weight, std=layer.in_features ** -0.5, generator=generator)
            nn.init.zeros_(layer.bias)

    def logit_from_embeddings(self, embeddings: Tensor) -> Tensor:
        """(B, L, d) embeddings -> (B,) logits: the function integrated gradients differentiates."""
        h = torch.tanh(self.token_mlp(embeddings))  # (B, L, hidden)
        return self.readout(h.mean(1)).squeeze(-1)  # (B,)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.logit_from_embeddings(self.embedding(tokens))  # (B,)


def token_importance(model: TokenSentimentModel, tokens: Tensor, steps: int = 64) -> Tensor:
    r"""IG of the logit w.r.t. each token's embedding (zero baseline), summed over the embedding: (L,)."""
    embeddings = model.embedding(tokens).detach()  # (L, d)
    attributions = integrated_gradients(model.logit_from_embeddings, embeddings, steps=steps)  # (L, d)
    return attributions.sum(-1)


def make_sentiment_data(n: int, polarity: Tensor, length: int, generator: torch.Generator | None = None,
                        sentiment_rate: float = 0.25) -> tuple[Tensor, Tensor]:
    r"""Random sentences (n, length) of token ids and labels $[\sum_t \text{polarity}(w_t) > 0]$ (n,).

    ``polarity`` (vocab,) is +1, -1 or 0 per token; each position holds a sentiment token with probability
    ``sentiment_rate``; sentences whose score is 0 are re-drawn, so every label is well defined.
    """
    device = polarity.device
    polar_ids = torch.nonzero(polarity).squeeze(-1)
    neutral_ids = torch.nonzero(polarity == 0).squeeze(-1)
    rows = []
    while sum(len(r) for r in rows) < n:
        pick_polar = torch.rand(n, length, generator=generator, device=device) < sentiment_rate
        polar = polar_ids[torch.randint(len(polar_ids), (n, length), generator=generator, device=device)]
        neutral = neutral_ids[torch.randint(len(neutral_ids), (n, length), generator=generator, device=device)]
        tokens = torch.where(pick_polar, polar, neutral)
        rows.append(tokens[polarity[tokens].sum(-1) != 0])
    tokens = torch.cat(rows)[:n]
    return tokens, (polarity[tokens].sum(-1) > 0).to(torch.float32)


def train_sentiment_model(tokens: Tensor, labels: Tensor, config: SentimentConfig, steps: int = 200,
                          lr: float = 2.0, generator: torch.Generator | None = None) -> TokenSentimentModel:
    """Full-batch gradient descent on the logistic loss; returns the trained model on ``tokens.device``."""
    model = TokenSentimentModel(config, generator, device=tokens.device)
    params = list(model.parameters())
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model(tokens), labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return model.eval()
