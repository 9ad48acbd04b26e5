r"""什么时候多进程的加速比可以大于1？ — https://kexue.fm/archives/7031

The article counts word frequencies over a corpus (THUCNews in the original) with a plain loop,
``tokens[token] = tokens.get(token, 0) + 1``, then splits the texts over worker processes. With
``P`` processes the speedup and the efficiency are

$$ S_P = \frac{T_1}{T_P}, \qquad E_P = \frac{S_P}{P}, $$

and $E_P$ is usually below 1. It can exceed 1 when the serial cost per token grows with the data:
the loop's cost per token grows with the size of the dictionary it updates (a large hash table no
longer fits in the CPU caches), and a worker that counts $1/P$ of the tokens only ever holds the
words of its own chunk. How many that is follows from the word frequencies $p_w$: a chunk of $m$
tokens drawn from them holds, in expectation,

$$ D(m) = \sum_w \big[1 - (1 - p_w)^m\big] $$

distinct words, which grows sub-linearly in $m$ (:func:`expected_distinct`). The same saving is open
to a single process that counts chunk by chunk and merges (:func:`chunked_count`): comparing the
pool with that, not with one monolithic dictionary, separates the cache effect from the parallelism.

Map-reduce form used on every path: each chunk is counted by the article's loop
(:func:`count_tokens`), $c_k(w) = \#\{\text{occurrences of } w \text{ in chunk } k\}$, and the parent
merges $c(w) = \sum_k c_k(w)$, which is exactly the serial table.

Tokens of the archive's texts come from :func:`spaces_code.corpus.tokenize` (jieba); a synthetic
Zipfian stream of token ids (:func:`zipf_stream`) gives a corpus as large as one likes. Process pools
need picklable, top-level worker functions, hence they live in this module rather than in a snippet.
"""
from __future__ import annotations

import multiprocessing
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import torch

from spaces_code.corpus import tokenize

T = TypeVar("T")


def count_tokens(tokens: Iterable[Hashable], counts: dict | None = None) -> dict:
    """The article's loop: add the occurrences of ``tokens`` to ``counts`` (a new dict by default)."""
    counts = {} if counts is None else counts
    for token in tokens:
        # $c_k(w) \mathrel{+}= 1$, verbatim from the article
        counts[token] = counts.get(token, 0) + 1
    return counts


def count_chunk(texts: Sequence[str]) -> dict[str, int]:
    """Token counts of one chunk of texts: the article's loop over their jieba tokens."""
    counts: dict[str, int] = {}
    for text in texts:
        count_tokens(tokenize(text), counts)
    return counts


def count_ids(ids: torch.Tensor) -> dict[int, int]:
    """Counts of one chunk of a token-id stream (a 1-D integer tensor): the same loop over its ids."""
    return count_tokens(ids.tolist())


def chunked(items: Sequence[T], chunk_size: int) -> list[Sequence[T]]:
    """Consecutive chunks of ``chunk_size`` items (the last one may be shorter)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]


def merge_counts(partials: Iterable[dict]) -> dict:
    r"""$c(w) = \sum_k c_k(w)$ as a plain ``dict`` (same type as the article's ``tokens``)."""
    total: dict = {}
    for partial in partials:
        for token, count in partial.items():
            # $c(w) = \sum_k c_k(w)$
            total[token] = total.get(token, 0) + count
    return total


def map_reduce(chunks: Sequence[T], count: Callable[[T], dict], processes: int = 1,
               start_method: str | None = None) -> dict:
    """Count every chunk with ``count`` and merge: in this process (``processes=1``) or in a pool.

    ``start_method`` is passed to ``multiprocessing.get_context`` (``None``: the platform default).
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        return merge_counts(map(count, chunks))
    with multiprocessing.get_context(start_method).Pool(processes) as pool:
        # unordered: a finished worker's counts are merged while the others still work
        return merge_counts(pool.imap_unordered(count, chunks))


def parallel_word_count(texts: Iterable[str], processes: int = 2, chunk_size: int = 8,
                        start_method: str | None = None) -> dict[str, int]:
    """Word counts of ``texts``: chunks of ``chunk_size`` texts counted by ``processes`` processes."""
    return map_reduce(chunked(list(texts), chunk_size), count_chunk, processes, start_method)


def chunked_count(ids: torch.Tensor, n_chunks: int, processes: int = 1,
                  start_method: str | None = None) -> dict[int, int]:
    """Counts of a token-id stream cut into ``n_chunks`` equal chunks, each counted by :func:`count_ids`.

    ``processes=1`` is the serial chunked count; ``n_chunks=1, processes=1`` is the monolithic one.
    """
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    # clone: a pickled view would carry the whole stream's storage to every worker
    chunks = [chunk.clone() for chunk in ids.tensor_split(n_chunks)]
    return map_reduce(chunks, count_ids, processes, start_method)


def zipf_probabilities(vocab_size: int, exponent: float = 1.0) -> torch.Tensor:
    r"""$p_w \propto w^{-s}$ for ranks $w = 1..V$ (float64, sums to 1)."""
    ranks = torch.arange(1, vocab_size + 1, dtype=torch.float64)
    weights = ranks ** -exponent
    return weights / weights.sum()


def zipf_stream(n_tokens: int, probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n_tokens`` i.i.d. token ids drawn from ``probs`` by inverse CDF: an int64 tensor on CPU.

    The stream is for counting in Python, so it lives on the CPU: pass a CPU generator.
    """
    cdf = probs.cpu().cumsum(0)
    uniform = torch.rand(n_tokens, generator=generator, dtype=torch.float64)
    # $w = \min\{w : F(w) > u\}$
    return torch.searchsorted(cdf, uniform * cdf[-1], right=True).clamp_(max=probs.numel() - 1)


def expected_distinct(probs: torch.Tensor, m: int) -> float:
    r"""$D(m) = \sum_w [1 - (1 - p_w)^m]$: the expected dictionary size of a chunk of ``m`` tokens."""
    # $(1 - p)^m = e^{m \log(1 - p)}$, accurate for tiny p
    return float((-torch.expm1(m * torch.log1p(-probs.double()))).sum())


def speedup(serial_seconds: float, parallel_seconds: float) -> float:
    r"""$S_P = T_1 / T_P$."""
    if parallel_seconds <= 0:
        raise ValueError("parallel time must be positive")
    # $S_P = T_1 / T_P$
    return serial_seconds / parallel_seconds
