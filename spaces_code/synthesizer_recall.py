r"""Google新作Synthesizer：我们还不够了解自注意力 — https://kexue.fm/archives/7430

When is the token-token interaction of self-attention needed? Associative recall answers it (the
Synthesizer paper, Tay et al. 2020, arXiv:2005.00743, asks the question; the task is the classic one
of fast-weights and Transformer-circuit studies). A sequence holds ``n_pairs`` (key, value) pairs, then
a query key; the answer is the value stored with that key:

$$
(k_1, v_1), \dots, (k_N, v_N), (k_q, ?) \;\mapsto\; v_j \quad\text{where}\quad k_j = k_q .
$$

Where the answer sits depends on the content of *two* tokens (the query and the matching key), so:

- dot-product attention can put its weight on $j$ with $q_{N+1}\cdot k_j$ large exactly when
  $k_j = k_q$;
- the Random Synthesizer's row $B_{N+1} = R_{N+1}$ is the same for every sequence: it reads a fixed
  blend of positions, and the right one only by chance;
- the Dense Synthesizer's row $B_{N+1} = \mathrm{MLP}(x_{N+1})$ sees the query alone. Here the keys are
  a *sorted* random subset of ``range(n_keys)``, so the query key says roughly where it sits (a small key
  is near the front): Dense can learn that prior over positions, but not where the key actually is.

Each position's input is the sum of a key, a value and a position embedding (the query carries the
extra value token ``n_values``); one mixer from :mod:`spaces_code.synthesizer` with a residual, and a
linear read-out of the value at the query position.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb, perm

import torch
from torch import Tensor, nn

from spaces_code import randomness


@dataclass
class RecallTask:
    n_pairs: int = 6  # (key, value) pairs before the query
    n_keys: int = 16  # keys are a sorted subset of range(n_keys)
    n_values: int = 16  # values are uniform on range(n_values)

    @property
    def length(self) -> int:
        return self.n_pairs + 1  # the query is the last position


def recall_batch(task: RecallTask, size: int, generator: torch.Generator | None,
                 device: torch.device | str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``keys`` (size, N+1), ``values`` (size, N+1) and ``target`` (size,): a sorted random subset of
    ``n_pairs`` keys with uniform values, then a query key drawn uniformly among them (its value slot
    holds the token ``n_values``). Drawn on the generator's device, moved to ``device``."""
    if task.n_pairs > task.n_keys:
        raise ValueError(f"n_pairs={task.n_pairs} distinct keys need n_keys >= n_pairs, got {task.n_keys}")
    scores = randomness.rand(size, task.n_keys, generator=generator, device="cpu")
    keys = scores.argsort(dim=1)[:, :task.n_pairs].sort(dim=1).values  # (size, N): a sorted random subset
    values = randomness.randint(0, task.n_values, (size, task.n_pairs), generator=generator, device="cpu")
    slot = randomness.randint(0, task.n_pairs, (size, 1), generator=generator, device="cpu")  # which pair
    keys = torch.cat((keys, keys.gather(1, slot)), dim=1)  # (size, N+1): the query key last
    values = torch.cat((values, torch.full((size, 1), task.n_values)), dim=1)
    target = values.gather(1, slot).squeeze(1)  # (size,)
    device = randomness.generator_device(generator) if device is None else device
    return keys.to(device), values.to(device), target.to(device)


def recall_mask(task: RecallTask, device: torch.device | str | None = None) -> Tensor:
    """(N+1, N+1): every position may see the N pairs, none sees the query slot (so the query cannot
    simply attend to itself, whose key always matches)."""
    mask = torch.zeros(task.length, task.length, dtype=torch.bool, device=device)
    mask[:, :task.n_pairs] = True
    return mask


class RecallReader(nn.Module):
    """Embeddings (key + value + position) -> ``mixer`` with a residual -> value logits at the query."""

    def __init__(self, task: RecallTask, d: int, mixer: nn.Module, generator: torch.Generator | None = None):
        super().__init__()
        self.task = task
        self.key = nn.Embedding(task.n_keys, d)
        self.value = nn.Embedding(task.n_values + 1, d)  # + the query's "?" token
        self.pos = nn.Embedding(task.length, d)
        self.mixer = mixer
        self.head = nn.Linear(d, task.n_values)
        for layer in (self.key, self.value, self.pos, self.head):
            randomness.init_parameters_(layer, generator)

    def embed(self, keys: Tensor, values: Tensor) -> Tensor:
        positions = torch.arange(keys.shape[1], device=keys.device)
        return self.key(keys) + self.value(values) + self.pos(positions)  # (batch, N+1, d)

    def forward(self, keys: Tensor, values: Tensor) -> Tensor:
        h = self.embed(keys, values)
        h = h + self.mixer(h, recall_mask(self.task, keys.device))
        return self.head(h[:, -1])  # (batch, n_values)


def train_recall(model: RecallReader, steps: int, generator: torch.Generator | None, batch_size: int = 64,
                 lr: float = 1e-2) -> list[float]:
    """AdamW on fresh batches (cross-entropy of the stored value); returns the loss curve."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        keys, values, target = recall_batch(model.task, batch_size, generator, device)
        loss = nn.functional.cross_entropy(model(keys, values), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def recall_accuracy(model: RecallReader, size: int, generator: torch.Generator | None) -> float:
    """Share of ``size`` fresh sequences whose stored value is the arg-max of the read-out."""
    keys, values, target = recall_batch(model.task, size, generator, next(model.parameters()).device)
    return (model(keys, values).argmax(-1) == target).float().mean().item()


def _set_partitions(items: list[int]):
    """Every partition of ``items`` into non-empty blocks (Bell(N) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        yield [[first]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]


def _best_vote_accuracy(weights: list[float], n_values: int) -> float:
    r"""$\mathbb{E}_{v}\big[\max_u \sum_j w_j [v_j = u]\big]$ for i.i.d. uniform values $v_j$: sum over
    the partitions of the positions into groups of equal values (probability $V^{\underline{b}}/V^N$)."""
    n, total = len(weights), 0.0
    for partition in _set_partitions(list(range(n))):
        b = len(partition)
        probability = perm(n_values, b) / n_values ** n  # the b groups get distinct values
        total += probability * max(sum(weights[j] for j in block) for block in partition)
    return total


def position_vote_accuracy(task: RecallTask, knows_query: bool) -> float:
    r"""Bayes accuracy of a reader that weighs *positions* without comparing keys, then votes by value.

    The query is pair $j$'s key with probability $1/N$. Knowing the query key $k$ (Dense), its rank $j$
    among the sorted keys is hypergeometric (the other $N-1$ keys are a random subset of the $K-1$
    others, $k$ of which are smaller):

    $$P(j \mid k) = \binom{k}{j}\binom{K-1-k}{N-1-j} \Big/ \binom{K-1}{N-1},\qquad P(k) = 1/K .$$

    Given the values, $P(\text{target} = u \mid k, v) = \sum_j P(j \mid k)\,[v_j = u]$, so the best
    such reader answers its arg-max and is right with probability
    $\mathbb{E}\big[\max_u \sum_j P(j\mid k)[v_j = u]\big]$ (without the query, Random:
    $P(j) = 1/N$, and the best answer is the most frequent value). A mixer whose weights at the query
    are a function of the query token alone (Dense) or of nothing (Random), read out linearly, is such a
    reader: this is what position-only mixing can reach on this task.
    """
    n, k_total = task.n_pairs, task.n_keys
    if not knows_query:
        return _best_vote_accuracy([1 / n] * n, task.n_values)
    total = comb(k_total - 1, n - 1)
    # $\sum_k P(k)\,\mathbb{E}_v \max_u \sum_j P(j \mid k)[v_j = u]$
    return sum(_best_vote_accuracy([comb(k, j) * comb(k_total - 1 - k, n - 1 - j) / total for j in range(n)],
                                   task.n_values) for k in range(k_total)) / k_total
