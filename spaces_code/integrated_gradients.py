r"""积分梯度：一种新颖的神经网络可视化方法 — https://kexue.fm/archives/7533

Papers: M. Sundararajan, A. Taly, Q. Yan, "Gradients of Counterfactuals" (arXiv:1611.02639) and
"Axiomatic Attribution for Deep Networks" (ICML 2017, arXiv:1703.01365).

The article's view: the plain gradient $\nabla_x F(x)$ only describes $F$ near $x$ and vanishes where the
model saturates. Instead compare $x$ with a reference $\bar{x}$ (the baseline) along the straight path
$\bar{x} + \alpha(x - \bar{x})$; by the fundamental theorem of calculus

$$F(x) - F(\bar{x}) = \sum_i \underbrace{(x_i - \bar{x}_i)\int_0^1
\frac{\partial F}{\partial x_i}\big(\bar{x} + \alpha(x - \bar{x})\big)\,d\alpha}_{\text{IG}_i},$$

so the attributions $\text{IG}_i$ add up exactly to the change of the output ("completeness"). The
integral is evaluated by the midpoint rule with $S$ = ``steps`` points. With
$g(\alpha) = F(\bar{x} + \alpha(x - \bar{x}))$ the completeness error is the midpoint rule's error on
$\int_0^1 g'$, by Euler–Maclaurin

$$\int_0^1 g'(\alpha)\,d\alpha - \frac{1}{S}\sum_{s=1}^{S} g'\Big(\frac{s - 1/2}{S}\Big)
= \frac{g''(1) - g''(0)}{24\,S^2} + O(S^{-4}),$$

second order in the step, but only once $S$ resolves the wiggles of $g'$ (for
$g(\alpha) = \sin(b\alpha)$ the error is exactly $\sin b\,(1 - t/\sin t)$, $t = b/2S$).

For text, $x$ is the sequence of token embeddings (baseline: zeros) and a token's importance is the sum
of its embedding's attributions — the heat map of the article ("越红的token越重要"). The toy sentiment
model here reads each token together with the one before it, so a negation word ("not") flips the word
that follows: attributions depend on context, which is what separates IG from occluding one token.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spaces_code.randomness import generator_device, rand, randint, randn

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


def completeness_error(f: BatchFn, x: Tensor, baseline: Tensor | None = None, steps: int = 64) -> Tensor:
    r"""$\sum_i \text{IG}_i - (F(x) - F(\bar{x}))$ (a 0-d tensor): the midpoint rule's error, $O(S^{-2})$."""
    baseline = torch.zeros_like(x) if baseline is None else baseline.to(x)
    with torch.no_grad():
        delta = (f(x[None]) - f(baseline[None]))[0]
    return integrated_gradients(f, x, baseline, steps).sum() - delta


def gradient(f: BatchFn, x: Tensor) -> Tensor:
    r"""The plain gradient $\nabla_x F(x)$, shaped like ``x`` (same conventions as IG)."""
    with torch.enable_grad():
        point = x.detach()[None].requires_grad_(True)  # (1, *x.shape)
        return torch.autograd.grad(f(point).sum(), point)[0][0]


def gradient_times_input(f: BatchFn, x: Tensor) -> Tensor:
    r"""The naive saliency $x \odot \nabla_x F(x)$, which the article improves on (same conventions as IG)."""
    return (x * gradient(f, x)).detach()


@dataclass
class SentimentConfig:
    vocab_size: int = 12
    embed_dim: int = 8
    hidden: int = 16  # units per two-token window
    length: int = 8  # tokens per sentence


class SentimentModel(nn.Module):
    r"""Embeddings $e_t$ → $h_t = \tanh(W [e_{t-1}; e_t])$ per token ($e_0 = 0$) → mean → $v^\top\bar{h}$.

    Each hidden unit sees a token and its predecessor, so "not good" can mean the opposite of "good":
    the model is additive over windows of two tokens, not over tokens. It has no biases, so the zero
    baseline is exactly neutral: logit 0, probability 1/2.
    """

    def __init__(self, config: SentimentConfig, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        device = generator_device(generator) if device is None else torch.device(device)
        d, hidden = config.embed_dim, config.hidden
        # N(0, 1) embeddings, N(0, 1/fan_in) weights: drawn from the generator, then moved
        self.embedding = nn.Embedding.from_pretrained(
            randn(config.vocab_size, d, generator=generator, device=device), freeze=False)
        self.window = nn.Linear(2 * d, hidden, bias=False, device=device)
        self.readout = nn.Linear(hidden, 1, bias=False, device=device)
        with torch.no_grad():
            for layer in (self.window, self.readout):
                layer.weight.copy_(randn(*layer.weight.shape, generator=generator, device=device)
                                   * layer.in_features ** -0.5)

    def logit_from_embeddings(self, embeddings: Tensor) -> Tensor:
        """(B, L, d) embeddings -> (B,) logits: the function integrated gradients differentiates."""
        previous = nn.functional.pad(embeddings, (0, 0, 1, 0))[:, :-1]  # (B, L, d): e_{t-1}, e_0 = 0
        h = torch.tanh(self.window(torch.cat([previous, embeddings], -1)))  # (B, L, hidden)
        return self.readout(h.mean(1)).squeeze(-1)  # (B,)

    def probability_from_embeddings(self, embeddings: Tensor) -> Tensor:
        """(B, L, d) -> (B,) probability of "positive": $\\sigma(\\text{logit})$, which saturates near 0 and 1."""
        return torch.sigmoid(self.logit_from_embeddings(embeddings))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.logit_from_embeddings(self.embedding(tokens))  # (B,)


def token_importance(model: SentimentModel, tokens: Tensor, steps: int = 64, probability: bool = False) -> Tensor:
    r"""IG of the logit (or the probability) w.r.t. each token's embedding (zero baseline), summed: (L,)."""
    f = model.probability_from_embeddings if probability else model.logit_from_embeddings
    embeddings = model.embedding(tokens).detach()  # (L, d)
    return integrated_gradients(lambda batch: f(batch), embeddings, steps=steps).sum(-1)


def attribution_comparison(model: SentimentModel, tokens: Tensor, steps: int = 64) -> dict[str, Tensor]:
    r"""Per-token scores (L,) of the probability $F = \sigma(\text{logit})$ by three methods:

    ``gradient``: $\Vert\nabla_{e_t} F\Vert$; ``gradient × input``: $e_t\cdot\nabla_{e_t}F$;
    ``integrated gradients``: $\sum_j \text{IG}_{t,j}$. Only the last adds up to $F(x) - F(\bar{x})$.
    """
    embeddings = model.embedding(tokens).detach()  # (L, d)
    f = model.probability_from_embeddings
    grad = gradient(f, embeddings)  # (L, d)
    return {"gradient": grad.norm(dim=-1),
            "gradient × input": (embeddings * grad).sum(-1),
            "integrated gradients": integrated_gradients(f, embeddings, steps=steps).sum(-1)}


def effective_polarity(tokens: Tensor, polarity: Tensor, negator: int | None = None) -> Tensor:
    r"""Per-token sentiment (..., L): $\text{polarity}(w_t)$, negated when $w_{t-1}$ is the ``negator``."""
    scores = polarity[tokens]
    if negator is None:
        return scores
    negated = nn.functional.pad(tokens[..., :-1] == negator, (1, 0))  # (..., L): predecessor is "not"
    return torch.where(negated, -scores, scores)


def make_sentiment_data(n: int, polarity: Tensor, length: int, generator: torch.Generator | None = None,
                        sentiment_rate: float = 0.3, negator: int | None = None,
                        negation_rate: float = 0.3) -> tuple[Tensor, Tensor]:
    r"""Random sentences (n, length) of token ids and labels $[\sum_t \text{effective polarity}_t > 0]$ (n,).

    ``polarity`` (vocab,) is +1, -1 or 0 per token (the ``negator`` has 0); each position holds a
    sentiment token with probability ``sentiment_rate``, else the negator with probability
    ``negation_rate``, else a neutral token. Sentences whose score is 0 are re-drawn. The result is on
    ``polarity``'s device; the draws are made on the generator's.
    """
    device = polarity.device
    polar_ids = torch.nonzero(polarity).squeeze(-1)
    neutral = polarity == 0
    if negator is not None:
        neutral[negator] = False
    neutral_ids = torch.nonzero(neutral).squeeze(-1)
    rows = []
    while sum(len(r) for r in rows) < n:
        u = rand(n, length, generator=generator, device=device)
        polar = polar_ids[randint(0, len(polar_ids), (n, length), generator=generator, device=device)]
        other = neutral_ids[randint(0, len(neutral_ids), (n, length), generator=generator, device=device)]
        if negator is not None:
            other = torch.where(u < sentiment_rate + negation_rate, torch.full_like(other, negator), other)
        tokens = torch.where(u < sentiment_rate, polar, other)
        rows.append(tokens[effective_polarity(tokens, polarity, negator).sum(-1) != 0])
    tokens = torch.cat(rows)[:n]
    return tokens, (effective_polarity(tokens, polarity, negator).sum(-1) > 0).to(torch.float32)


def train_sentiment_model(tokens: Tensor, labels: Tensor, config: SentimentConfig, steps: int = 200,
                          lr: float = 0.08, weight_decay: float = 0.1,
                          generator: torch.Generator | None = None) -> SentimentModel:
    """Full-batch AdamW on the logistic loss; returns the trained model on ``tokens.device``.

    Weight decay pulls what the task does not need toward zero, the baseline: the embeddings of neutral
    words end up near it, so their attributions are small.
    """
    model = SentimentModel(config, generator, device=tokens.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model(tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


# the toy task of the page and the tests: 2 positive words, 2 negative words, a negator, 7 neutral words
VOCAB = ("good", "great", "bad", "awful", "not", "the", "movie", "was", "plot", "and", "it", "really")
NEGATOR = VOCAB.index("not")


def negation_task(generator: torch.Generator | None = None, n_train: int = 2048,
                  device: torch.device | str | None = None) -> tuple[SentimentModel, Tensor]:
    """Train a :class:`SentimentModel` on ``n_train`` random sentences over :data:`VOCAB` (with "not");
    returns the model and the polarity vector (vocab,), both on ``device`` (default: the generator's)."""
    device = generator_device(generator) if device is None else torch.device(device)
    polarity = torch.tensor([1.0, 1.0, -1.0, -1.0] + [0.0] * (len(VOCAB) - 4), device=device)
    config = SentimentConfig(vocab_size=len(VOCAB))
    tokens, labels = make_sentiment_data(n_train, polarity, config.length, generator, negator=NEGATOR)
    return train_sentiment_model(tokens, labels, config, generator=generator), polarity

