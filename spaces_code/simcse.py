r"""中文任务还是SOTA吗？我们给SimCSE补充了一些实验 — https://kexue.fm/archives/8348

Paper: Gao, Yao and Chen, "SimCSE: Simple Contrastive Learning of Sentence Embeddings" (2021,
arXiv:2104.08821).

Unsupervised SimCSE encodes every sentence twice; the only difference between the two encodings
$h_i, h_i'$ is the dropout mask, and that is the whole "data augmentation". The other view of the
same sentence is the positive, every other sentence of the batch a negative:

$$\mathcal{L} = -\frac{1}{N}\sum_{i=1}^{N} \log
    \frac{e^{\cos(h_i, h_i')/\tau}}{\sum_{j=1}^{N} e^{\cos(h_i, h_j')/\tau}}
\qquad(\text{the paper}).$$

The bert4keras code released with the article (github.com/bojone/SimCSE) puts both views into one
batch of $2N$ vectors $[h_1, h_1', h_2, h_2', \dots]$ and lets each of them pick its
partner among the other $2N-1$ (scale 20, i.e. $\tau = 0.05$); then both views of every
other sentence are negatives. :func:`simcse_loss` computes either (``in_view_negatives``). No
pretrained BERT is used here: the encoder is a tiny Transformer built in code.

The article judges sentence vectors by the Spearman correlation $\rho$ between gold similarity scores and
$\cos(u_i, v_i)$ of each pair's vectors, with BERT-whitening as the baseline. :func:`toy_sts` generates
such a task (pairs sharing $k$ content words among frequent stop words, gold $k$),
:func:`train_simcse` trains the encoder on unlabelled sentences, :func:`sts_spearman` scores it, raw
or whitened (:func:`whitening`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spaces_code.attention_masks import bidirectional_mask
from spaces_code.cpm_lm import MLP, SelfAttention
from spaces_code.randomness import init_parameters_, rand, randint


def simcse_loss(z1: Tensor, z2: Tensor, temperature: float = 0.05, in_view_negatives: bool = True) -> Tensor:
    """Contrastive loss of two views ``z1, z2`` (N, d) of the same N sentences (row i of both).

    ``in_view_negatives=True``: the article's 2N x 2N form; ``False``: the paper's N x N form.
    """
    n = z1.shape[0]
    if in_view_negatives:
        h = torch.stack([z1, z2], dim=1).flatten(0, 1)  # (2N, d): h_1, h_1', h_2, h_2', ...
        h = nn.functional.normalize(h, dim=-1)
        # $s_{ij} = \cos(h_i, h_j)/\tau$, a vector is never its own candidate
        sim = (h @ h.T / temperature).fill_diagonal_(float("-inf"))  # (2N, 2N)
        partner = torch.arange(2 * n, device=h.device) ^ 1  # 0<->1, 2<->3, ...
        return nn.functional.cross_entropy(sim, partner)
    # $-\log e^{\cos(h_i, h_i')/\tau} / \sum_j e^{\cos(h_i, h_j')/\tau}$
    sim = nn.functional.normalize(z1, dim=-1) @ nn.functional.normalize(z2, dim=-1).T / temperature  # (N, N)
    return nn.functional.cross_entropy(sim, torch.arange(n, device=sim.device))


def alignment_uniformity(z1: Tensor, z2: Tensor, t: float = 2.0) -> tuple[Tensor, Tensor]:
    r"""The two diagnostics the SimCSE paper tracks (Wang and Isola, 2020), on normalised embeddings:

    alignment $\mathbb{E}\Vert f(x) - f(x^+)\Vert^2$ over positive pairs (row i of ``z1, z2``),
    uniformity $\log \mathbb{E}\, e^{-t\Vert f(x) - f(y)\Vert^2}$ over pairs of different
    sentences (rows of ``z1``). Lower is better for both.
    """
    f1, f2 = nn.functional.normalize(z1, dim=-1), nn.functional.normalize(z2, dim=-1)
    # $\ell_{align} = \mathbb{E}\Vert f(x) - f(x^+)\Vert^2$
    alignment = (f1 - f2).pow(2).sum(-1).mean()
    n = f1.shape[0]
    distinct = ~torch.eye(n, dtype=torch.bool, device=f1.device)
    squared = (2.0 - 2.0 * f1 @ f1.T)[distinct]  # (n * (n - 1),): unit vectors, |a - b|^2 = 2 - 2 a.b
    # $\ell_{uniform} = \log \mathbb{E}\, e^{-t\Vert f(x) - f(y)\Vert^2}$
    uniformity = torch.logsumexp(-t * squared, dim=0) - math.log(squared.numel())
    return alignment, uniformity


def dropout(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Inverted dropout whose mask is drawn from ``generator``: zero with probability p, else x/(1-p)."""
    if p == 0.0:
        return x
    keep = rand(*x.shape, generator=generator, device=x.device) >= p  # drawn on the generator's device
    return x * keep / (1.0 - p)


class TinyEncoder(nn.Module):
    """Character embeddings, ``n_layer`` bidirectional Transformer blocks with dropout, mean pooling.

    ``ids`` (batch, n) with ``pad_id`` padding -> sentence embeddings (batch, dim). Dropout acts only in
    training mode, with masks from ``generator``: two calls give two different views of one sentence.
    """

    def __init__(self, vocab_size: int, max_len: int, dim: int = 64, n_head: int = 4, n_layer: int = 1,
                 p_drop: float = 0.1, pad_id: int = 0, generator: torch.Generator | None = None):
        super().__init__()
        self.p_drop, self.pad_id = p_drop, pad_id
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.attn = nn.ModuleList(SelfAttention(dim, n_head) for _ in range(n_layer))
        self.mlp = nn.ModuleList(MLP(dim, 2 * dim) for _ in range(n_layer))
        self.ln = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2 * n_layer))
        init_parameters_(self, generator)  # weights from the generator, never the global RNG

    def forward(self, ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
        p = self.p_drop if self.training else 0.0
        n = ids.shape[1]
        real = ids != self.pad_id  # (batch, n)
        mask = bidirectional_mask(n, device=ids.device) & real[:, None, None, :]  # (batch, 1, n, n)
        h = dropout(self.tok(ids) + self.pos(torch.arange(n, device=ids.device)), p, generator)
        for i, (attn, mlp) in enumerate(zip(self.attn, self.mlp)):
            h = self.ln[2 * i](h + dropout(attn(h, mask), p, generator))  # (batch, n, dim)
            h = self.ln[2 * i + 1](h + dropout(mlp(h), p, generator))
        real = real[..., None].to(h.dtype)
        return (h * real).sum(1) / real.sum(1).clamp_min(1.0)  # (batch, dim): mean over real tokens


def simcse_views(encoder: nn.Module, ids: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The two dropout views $h, h'$ (N, d) of a batch: the same sentences encoded twice."""
    return encoder(ids, generator), encoder(ids, generator)


def whitening(embeddings: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    r"""BERT-whitening (Su Jianlin, 2021), the baseline SimCSE is compared with on STS tasks.

    From embeddings (n, d): $\mu$ (d,) and $W = U\Lambda^{-1/2}$ (d, k) with $\Sigma = U\Lambda U^\top$ the
    covariance, so that $(x - \mu)W$ has identity covariance (k = ``dim`` keeps the largest directions).
    """
    mu = embeddings.mean(0)
    centred = embeddings - mu
    # $\Sigma = U \Lambda U^\top$
    u, s, _ = torch.linalg.svd(centred.T @ centred / embeddings.shape[0])
    k = embeddings.shape[1] if dim is None else dim
    # $W = U \Lambda^{-1/2}$
    return mu, u[:, :k] / s[:k].sqrt()


def spearman(a: Tensor, b: Tensor) -> Tensor:
    r"""Spearman's rank correlation of two (n,) vectors: Pearson's correlation of their ranks (ties: mean rank)."""
    def ranks(x: Tensor) -> Tensor:
        x = x.to(torch.float64)
        below = (x[None, :] < x[:, None]).sum(1).to(x.dtype)  # (n,): how many are smaller
        equal = (x[None, :] == x[:, None]).sum(1).to(x.dtype)  # (n,): ties, itself included
        return below + (equal + 1) / 2  # 1-based mean rank
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    # $\rho = \frac{\sum_i r_i s_i}{\sqrt{\sum_i r_i^2 \sum_i s_i^2}}$ on centred ranks
    return (ra * rb).sum() / (ra.square().sum() * rb.square().sum()).sqrt()


def toy_sts(n_pairs: int, n_content: int = 400, n_stop: int = 2, length: int = 6, max_stop: int = 10,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""A toy semantic-textual-similarity set: ``n_pairs`` sentence pairs with graded gold scores.

    A sentence is ``length`` distinct content words (ids ``n_stop + 1 ..``) among 0 to ``max_stop``
    stop words (ids ``1 .. n_stop``, frequent and meaningless), in random order, padded with 0. The
    second sentence of a pair keeps $k$ of the first one's content words and draws the others afresh;
    the gold score is $k \in \{0, \dots, \text{length}\}$, uniform. Returns ``a, b`` (n_pairs,
    length + max_stop) and ``gold`` (n_pairs,) on CPU, drawn from a CPU ``generator``: move them to the device.
    """
    width = length + max_stop
    a = torch.zeros(n_pairs, width, dtype=torch.long)
    b = torch.zeros(n_pairs, width, dtype=torch.long)
    gold = torch.randint(0, length + 1, (n_pairs,), generator=generator)
    for i in range(n_pairs):
        words = torch.randperm(n_content, generator=generator)[:2 * length] + n_stop + 1
        k = int(gold[i])
        for row, content in ((a, words[:length]), (b, torch.cat([words[:k], words[length:2 * length - k]]))):
            stops = torch.randint(1, n_stop + 1, (int(torch.randint(0, max_stop + 1, (1,), generator=generator)),),
                                  generator=generator)
            sentence = torch.cat([content, stops])
            row[i, :len(sentence)] = sentence[torch.randperm(len(sentence), generator=generator)]
    return a, b, gold


def train_simcse(encoder: nn.Module, sentences: Tensor, steps: int, batch: int = 64, lr: float = 1e-2,
                 temperature: float = 0.05, generator: torch.Generator | None = None,
                 optimizer: torch.optim.Optimizer | None = None) -> list[float]:
    """Unsupervised SimCSE: ``steps`` AdamW steps on random batches of unlabelled ``sentences``.

    Batches and dropout masks come from ``generator``; returns the loss of every step. Pass
    ``optimizer`` to continue a run (``lr`` is then ignored), else a fresh AdamW is made.
    """
    optimizer = optimizer or torch.optim.AdamW(encoder.parameters(), lr=lr)
    encoder.train()
    losses = []
    for _ in range(steps):
        rows = randint(0, sentences.shape[0], (batch,), generator=generator, device=sentences.device)
        loss = simcse_loss(*simcse_views(encoder, sentences[rows], generator), temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    encoder.eval()
    return losses


@torch.no_grad()
def sts_spearman(encoder: nn.Module, a: Tensor, b: Tensor, gold: Tensor, whiten: bool = False) -> Tensor:
    r"""Spearman correlation between ``gold`` and $\cos(u_i, v_i)$ of the pairs' embeddings (eval mode).

    ``whiten``: first map both sides by $x \mapsto (x - \mu)W$, fitted on all the pairs' embeddings.
    """
    was_training = encoder.training
    encoder.eval()
    u, v = encoder(a), encoder(b)  # (n, d) each
    encoder.train(was_training)
    if whiten:
        mu, w = whitening(torch.cat([u, v]))
        u, v = (u - mu) @ w, (v - mu) @ w
    return spearman(nn.functional.cosine_similarity(u, v, dim=-1), gold)
