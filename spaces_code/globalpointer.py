r"""GlobalPointer：用统一的方式处理嵌套和非嵌套NER — https://kexue.fm/archives/8373

GlobalPointer (Su et al., "Global Pointer: Novel Efficient Span-based Approach for Named Entity
Recognition", 2022, arXiv:2208.03054). Every span $[i, j]$ gets, for every entity type
$\alpha$, the score

$$
s_\alpha(i, j) = q_{i,\alpha}^\top k_{j,\alpha}
               = (\mathcal{R}_i W_{q,\alpha} h_i)^\top (\mathcal{R}_j W_{k,\alpha} h_j)
               = h_i^\top W_{q,\alpha}^\top \mathcal{R}_{j-i} W_{k,\alpha} h_j,
$$

with RoPE $\mathcal{R}$ (:mod:`spaces_code.rope`) so the score knows the span length. A span is an
entity of type $\alpha$ iff $s_\alpha(i, j) > 0$; spans may overlap or nest freely, and
decoding is a threshold, with no dynamic programming. Training uses the multi-label categorical
cross-entropy the article generalises from softmax cross-entropy:

$$
\log\Big(1 + \sum_{i\in\Omega_{neg}} e^{s_i}\Big)
+ \log\Big(1 + \sum_{j\in\Omega_{pos}} e^{-s_j}\Big).
$$

The toy data (:func:`make_toy_nested_ner`) plants nested entities: an organisation such as 北京大学 contains
the location 北京.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spaces_code import randomness
from spaces_code.rope import apply_rope


def multilabel_categorical_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Loss per row, shape ``(...)``, for scores ``y_pred`` (..., C) and targets ``y_true`` (..., C)
    in {0, 1}.

    Computed as two ``logsumexp`` over the class scores with a zero appended (the "1 +" of the formula), so
    scores of any magnitude are safe and rows without positives (or without negatives) are fine.
    """
    positive = y_true.to(y_pred.device) > 0.5  # (..., C)
    neg_scores = y_pred.masked_fill(positive, float("-inf"))  # s_i for i in Omega_neg
    pos_scores = (-y_pred).masked_fill(~positive, float("-inf"))  # -s_j for j in Omega_pos
    zero = y_pred.new_zeros(y_pred.shape[:-1] + (1,))  # (..., 1)
    # $\log(1 + \sum_{i \in \Omega_{neg}} e^{s_i})$
    neg_loss = torch.logsumexp(torch.cat((neg_scores, zero), dim=-1), dim=-1)
    # $\log(1 + \sum_{j \in \Omega_{pos}} e^{-s_j})$
    pos_loss = torch.logsumexp(torch.cat((pos_scores, zero), dim=-1), dim=-1)
    return neg_loss + pos_loss


def global_pointer_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """Mean MCCE over (sample, type): each type's ``n x n`` span matrix is one multi-label row."""
    return multilabel_categorical_crossentropy(labels.flatten(-2), scores.flatten(-2)).mean()


@dataclass
class GlobalPointerConfig:
    hidden_size: int = 64  # size of the encoder output h_i
    num_types: int = 2  # entity types alpha, one "head" each
    head_size: int = 32  # size of q_{i,alpha}, k_{j,alpha}; even (RoPE)
    use_rope: bool = True  # without RoPE the span score cannot see the span length


class GlobalPointer(nn.Module):
    """Span scores ``(batch, types, n, n)`` from encoder states ``h`` (batch, n, hidden).

    Spans with ``end < start`` or touching padding (``mask`` False) get the most negative finite score.
    """

    def __init__(self, config: GlobalPointerConfig, generator: torch.Generator | None = None):
        super().__init__()
        if config.use_rope and config.head_size % 2:
            raise ValueError(f"RoPE needs an even head_size, got {config.head_size}")
        self.config = config
        self.dense = nn.Linear(config.hidden_size, config.num_types * config.head_size * 2)
        randomness.init_parameters_(self, generator)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, n, _ = h.shape
        types, head_size = self.config.num_types, self.config.head_size
        qk = self.dense(h).view(batch, n, types, 2, head_size).permute(3, 0, 2, 1, 4)
        q, k = qk[0], qk[1]  # (batch, types, n, head_size)
        if self.config.use_rope:
            positions = torch.arange(n, device=h.device)
            q, k = apply_rope(q, positions), apply_rope(k, positions)
        # $s_\alpha(i,j) = q_{i,\alpha}^\top k_{j,\alpha}$ (scaled by $1/\sqrt{head\_size}$)
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (batch, types, n, n)
        valid = torch.ones(n, n, dtype=torch.bool, device=h.device).triu()  # start <= end
        if mask is not None:
            token = mask.to(torch.bool)  # (batch, n)
            valid = valid & token[:, None, :, None] & token[:, None, None, :]  # (batch, 1, n, n)
        return scores.masked_fill(~valid, torch.finfo(scores.dtype).min)


def decode_entities(scores: Tensor, threshold: float = 0.0) -> list[tuple[int, int, int]]:
    r"""All ``(type, start, end)`` with $s_\alpha(start, end) >$ ``threshold`` for one sample's
    scores (types, n, n), sorted. Nested and overlapping spans come out as they are."""
    hits = torch.nonzero(scores > threshold).tolist()
    return sorted(tuple(hit) for hit in hits)


# ---------------------------------------------------------------- toy nested-NER data and tagger
TOY_TYPES = ("LOC", "ORG")
TOY_PLACES = ("北京", "上海", "广州", "深圳", "南京")
TOY_ORG_SUFFIXES = ("大学", "银行", "医院")
TOY_FILLERS = ("我", "在", "去", "了", "和", "的", "学习", "工作", "今天", "看病", "大家")
TOY_VOCAB = ("[PAD]",) + tuple(sorted(set("".join(TOY_PLACES + TOY_ORG_SUFFIXES + TOY_FILLERS))))


def encode_toy(text: str) -> list[int]:
    """Character ids in :data:`TOY_VOCAB`."""
    return [TOY_VOCAB.index(char) for char in text]


def make_toy_nested_ner(num_sentences: int, max_len: int = 16, generator: torch.Generator | None = None,
                        ) -> tuple[list[str], list[list[tuple[int, int, int]]]]:
    """Random sentences of places (LOC), organisations place+suffix (ORG, with the LOC nested inside)
    and filler words, at most ``max_len`` characters; returns texts and gold ``(type, start, end)``."""
    device = generator.device if generator is not None else None
    # one uniform draw per (sentence, piece, choice): kind, place, suffix or filler
    draws = torch.rand(num_sentences, max_len, 3, generator=generator, device=device).tolist()
    texts, entities = [], []
    for sentence_draws in draws:
        text, spans = "", []
        for u_kind, u_place, u_word in sentence_draws:
            kind = int(3 * u_kind)
            place = TOY_PLACES[int(len(TOY_PLACES) * u_place)]
            if kind == 0:
                piece, found = place, [(0, 0, len(place) - 1)]
            elif kind == 1:
                piece = place + TOY_ORG_SUFFIXES[int(len(TOY_ORG_SUFFIXES) * u_word)]
                found = [(0, 0, len(place) - 1), (1, 0, len(piece) - 1)]
            else:
                piece, found = TOY_FILLERS[int(len(TOY_FILLERS) * u_word)], []
            if len(text) + len(piece) > max_len:
                break
            spans += [(t, len(text) + s, len(text) + e) for t, s, e in found]
            text += piece
        texts.append(text)
        entities.append(sorted(spans))
    return texts, entities


def toy_batch(texts: list[str], entities: list[list[tuple[int, int, int]]] | None = None,
              device: torch.device | str | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Padded ids (batch, n), mask (batch, n) and, if ``entities`` is given, labels (batch, types, n, n)."""
    n = max(len(text) for text in texts)
    ids = torch.zeros(len(texts), n, dtype=torch.long)
    for row, text in enumerate(texts):
        ids[row, :len(text)] = torch.tensor(encode_toy(text))
    labels = None
    if entities is not None:
        labels = torch.zeros(len(texts), len(TOY_TYPES), n, n)
        for row, spans in enumerate(entities):
            for t, s, e in spans:
                labels[row, t, s, e] = 1.0
        labels = labels.to(device)
    return ids.to(device), (ids != 0).to(device), labels


class ToyTagger(nn.Module):
    """Character embedding -> two width-3 convolutions (each token sees +-2 neighbours) -> GlobalPointer;
    every parameter is drawn from ``generator``."""

    def __init__(self, embed_size: int = 32, head_size: int = 16, generator: torch.Generator | None = None):
        super().__init__()
        self.embed = nn.Embedding(len(TOY_VOCAB), embed_size, padding_idx=0)
        self.encoder = nn.Sequential(
            nn.Conv1d(embed_size, embed_size, 3, padding=1), nn.GELU(),
            nn.Conv1d(embed_size, embed_size, 3, padding=1), nn.GELU())
        self.pointer = GlobalPointer(GlobalPointerConfig(embed_size, len(TOY_TYPES), head_size))
        randomness.init_parameters_(self, generator)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        h = self.encoder(self.embed(ids).transpose(1, 2)).transpose(1, 2)  # (batch, n, embed_size)
        return self.pointer(h, mask)  # (batch, types, n, n)


def fit_toy_tagger(model: ToyTagger, steps: int = 80, batch_size: int = 32, lr: float = 3e-3,
                   generator: torch.Generator | None = None) -> list[float]:
    """Train on fresh random toy batches with :func:`global_pointer_loss`; returns the loss curve."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        ids, mask, labels = toy_batch(*make_toy_nested_ner(batch_size, generator=generator), device=device)
        loss = global_pointer_loss(model(ids, mask), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
