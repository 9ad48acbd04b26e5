r"""无监督分词和句法分析！原来BERT还可以这样用 — https://kexue.fm/archives/7476

Paper: Wu, Chen, Kao and Liu, "Perturbed Masking: Parameter-free Probing for Analyzing and Interpreting
BERT" (ACL 2020, arXiv:2004.14786).

Mask $x_i$ and read the masked LM's representation of position $i$; then mask $x_j$ as well and read it
again. How much the second masking moves the first reading is the impact of $x_j$ on $x_i$:

$$f(x_i, x_j) = \left\Vert H(\boldsymbol{x}\backslash\{x_i\})_i
              - H(\boldsymbol{x}\backslash\{x_i, x_j\})_i \right\Vert_2 .$$

Adjacent tokens that strongly depend on each other belong to one word: cut between $x_i$ and $x_{i+1}$
when $\tfrac12[f(x_i, x_{i+1}) + f(x_{i+1}, x_i)]$ is below a threshold. Splitting a span recursively
where its two halves are least coupled gives a binary tree (a syntax-like parse).

:func:`impact_matrix` accepts *any* masked LM given as a callable ``(batch, n) ids -> (batch, n, d)``.
Two stand-ins for BERT live here, since no pretrained weights are used in this project: a synthetic
:class:`PlantedMLM` whose dependency structure is known, and a character :class:`BigramMLM` counted
from a text.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from spaces_code.randomness import randn

MaskedLM = Callable[[Tensor], Tensor]
Tree = int | tuple["Tree", "Tree"]


@torch.no_grad()
def impact_matrix(mlm: MaskedLM, tokens: Tensor, mask_id: int, batch_size: int = 256) -> Tensor:
    r"""$F_{ij} = f(x_i, x_j)$ for a sentence ``tokens`` (n,); float, shape ``(n, n)``, zero
    diagonal. Runs the model on the n single-masked and n·n pair-masked copies in chunks."""
    n = tokens.numel()
    eye = torch.eye(n, dtype=torch.bool, device=tokens.device)
    # copy [i, j] masks positions i and j (i == j: only i); its reading is taken at position i
    masks = (eye[:, None, :] | eye[None, :, :]).reshape(n * n, n)  # (n*n, n)
    read_at = torch.arange(n, device=tokens.device).repeat_interleave(n)  # (n*n,)
    inputs = tokens.reshape(1, n).masked_fill(masks, mask_id)  # (n*n, n)
    read = getattr(mlm, "read", None)  # an MLM that can compute just the read positions (BigramMLM)
    readings = []
    for start in range(0, n * n, batch_size):
        batch, at = inputs[start:start + batch_size], read_at[start:start + batch_size]
        if read is not None:
            readings.append(read(batch, at))  # (b, d)
        else:
            out = mlm(batch)  # (b, n, d)
            readings.append(out[torch.arange(out.shape[0], device=out.device), at])  # (b, d)
    h = torch.cat(readings).reshape(n, n, -1)  # (n, n, d); h[i, i] = H(x\{x_i})_i
    single = h.diagonal(dim1=0, dim2=1).T  # (n, d)
    # $f(x_i, x_j) = \Vert H(x\backslash\{x_i\})_i - H(x\backslash\{x_i,x_j\})_i \Vert$
    return (single[:, None, :] - h).norm(dim=-1)  # (n, n)


def adjacent_cohesion(impact: Tensor) -> Tensor:
    r"""$\tfrac12[f(x_i, x_{i+1}) + f(x_{i+1}, x_i)]$ for ``i = 0..n-2``, shape ``(n-1,)``."""
    return (impact.diagonal(1) + impact.diagonal(-1)) / 2


def segment(impact: Tensor, threshold: float) -> list[tuple[int, int]]:
    r"""Words as half-open spans ``[start, end)``: cut wherever the adjacent cohesion < threshold."""
    cuts = (adjacent_cohesion(impact) < threshold).nonzero().flatten() + 1
    edges = [0, *cuts.tolist(), impact.shape[0]]
    return list(zip(edges[:-1], edges[1:]))


def parse_tree(impact: Tensor, start: int = 0, end: int | None = None) -> Tree:
    r"""Top-down binary tree over positions ``start..end-1`` (leaves are positions).

    Each span is split where its two halves are least coupled relative to their own weight: with the
    symmetric coupling $S = F + F^\top$ restricted to the span, the cut ``k`` minimises the
    normalised cut $\mathrm{cut}(A,B)/\mathrm{vol}(A) + \mathrm{cut}(A,B)/\mathrm{vol}(B)$.
    (The paper also splits top-down on this matrix; the normalised cut is the choice made here.)
    """
    end = impact.shape[0] if end is None else end
    if end - start == 1:
        return start
    s = impact[start:end, start:end] + impact[start:end, start:end].T  # (m, m)
    volume = s.sum(dim=1)  # (m,)
    scores = []
    for k in range(1, end - start):
        # $\mathrm{Ncut} = \mathrm{cut}(A,B)\,[1/\mathrm{vol}(A) + 1/\mathrm{vol}(B)]$
        cut = s[:k, k:].sum()
        scores.append(cut / volume[:k].sum().clamp_min(1e-30) + cut / volume[k:].sum().clamp_min(1e-30))
    k = start + 1 + int(torch.stack(scores).argmin())
    return parse_tree(impact, start, k), parse_tree(impact, k, end)


class PlantedMLM(nn.Module):
    r"""A synthetic masked LM with a known structure for sentences of length ``n``:

    $H_i = \tanh\big(\sum_j W_{ij} E_{x_j}\big)$ with $W_{ij}$ = ``word`` if i, j share a
    word, ``phrase`` if they share only a phrase, ``other`` otherwise ($W_{ii} = 1$).
    ``word_ids`` / ``phrase_ids`` (n,) give each position's word and phrase.
    """

    def __init__(self, word_ids: Tensor, phrase_ids: Tensor, vocab_size: int, dim: int = 64,
                 word: float = 1.0, phrase: float = 0.3, other: float = 0.05,
                 generator: torch.Generator | None = None):
        super().__init__()
        device = word_ids.device
        same_word = word_ids[:, None] == word_ids[None, :]
        same_phrase = phrase_ids[:, None] == phrase_ids[None, :]
        w = torch.full(same_word.shape, other, device=device)
        w = w.masked_fill(same_phrase, phrase).masked_fill(same_word, word).fill_diagonal_(1.0)
        self.register_buffer("coupling", w)  # (n, n)
        # small embeddings keep tanh in its near-linear range
        # drawn on the generator's device, then moved: a CPU generator gives the same E on every device
        emb = randn(vocab_size, dim, generator=generator, device=device) / dim ** 0.5
        self.register_buffer("embedding", emb)  # (vocab, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        # $H_i = \tanh(\sum_j W_{ij} E_{x_j})$
        return torch.tanh(self.coupling @ self.embedding[tokens])  # (batch, n, dim)


class BigramMLM(nn.Module):
    r"""Character bigram model used as a masked LM: the reading at position i is the distribution

    $p(x_i = c\,|\,x_{i-1}, x_{i+1}) \propto p(c|x_{i-1})\,p(x_{i+1}|c)$, returned as
    $\sqrt{p}$ so that the Euclidean distance of two readings is (√2 times) their Hellinger
    distance. A masked left neighbour is replaced by the unigram prior; a masked right one drops its
    factor.
    ``counts[a, b]`` counts b following a (from :meth:`count`); id ``boundary`` marks sentence starts
    and ends; ``mask_id`` is the mask (a vocabulary id that never occurs in the counts).
    """

    def __init__(self, counts: Tensor, mask_id: int, boundary: int = 0, smoothing: float = 0.1):
        super().__init__()
        counts = counts.double() + smoothing
        self.mask_id, self.boundary = mask_id, boundary
        log_next = (counts / counts.sum(1, keepdim=True)).log()  # (V, V) log p(b|a)
        self.register_buffer("log_next", log_next.float())
        self.register_buffer("log_unigram", (counts.sum(0) / counts.sum()).log().float())  # (V,)

    @staticmethod
    def count(sentences: list[Tensor], vocab_size: int, boundary: int = 0) -> Tensor:
        r"""Bigram counts of id sequences, each padded with ``boundary`` on both sides."""
        counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
        for s in sentences:
            edge = torch.tensor([boundary])
            ids = torch.cat([edge, s.cpu(), edge])
            counts.index_put_((ids[:-1], ids[1:]), torch.ones(ids.numel() - 1, dtype=torch.float64),
                              accumulate=True)
        return counts

    def forward(self, tokens: Tensor) -> Tensor:
        edge = tokens.new_full((tokens.shape[0], 1), self.boundary)
        left = torch.cat([edge, tokens[:, :-1]], dim=1)  # (batch, n)
        right = torch.cat([tokens[:, 1:], edge], dim=1)  # (batch, n)
        return self._reading(left, right)  # (batch, n, V)

    def read(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """``forward(tokens)[b, positions[b]]`` for each row b, without computing the other positions:
        ``(batch, V)`` (what :func:`impact_matrix` reads; n times less work)."""
        padded = nn.functional.pad(tokens, (1, 1), value=self.boundary)  # (batch, n + 2)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        return self._reading(padded[rows, positions], padded[rows, positions + 2])  # (batch, V)

    def _reading(self, left: Tensor, right: Tensor) -> Tensor:
        """The reading at positions whose neighbours are ``left``, ``right`` (any shape): (..., V)."""
        left_masked, right_masked = left == self.mask_id, right == self.mask_id
        left = left.masked_fill(left_masked, self.boundary)
        right = right.masked_fill(right_masked, self.boundary)
        from_left = torch.where(left_masked[..., None], self.log_unigram, self.log_next[left])  # (..., V)
        to_right = self.log_next.T[right].masked_fill(right_masked[..., None], 0.0)  # log p(x_{i+1}|c)
        # $p(c|x_{i-1}, x_{i+1}) \propto p(c|x_{i-1})\,p(x_{i+1}|c)$
        return (from_left + to_right).softmax(dim=-1).sqrt()  # (..., V)
