r"""什么时候多进程的加速比可以大于1？ — https://kexue.fm/archives/7031

The article counts word frequencies over a corpus (THUCNews in the original) with a plain loop,
``tokens[token] = tokens.get(token, 0) + 1``, then splits the texts over worker processes. With
``P`` processes the speedup is

$$ S_P = \frac{T_1}{T_P}, $$

and the parallel efficiency ``S_P / P`` is usually below 1. It can exceed 1 when the serial cost grows
faster than linearly with the data, e.g. one huge dictionary whose look-ups and resizes get slower in
large memory, while each worker only ever touches a small one.

Map-reduce form used here: each worker counts one chunk of texts into its own ``Counter``,

$$ c_k(w) = \#\{\text{occurrences of } w \text{ in chunk } k\}, \qquad c(w) = \sum_k c_k(w), $$

and the parent merges the partial counts, which is exactly the serial table.

Tokens come from :func:`spaces_code.corpus.tokenize` (jieba). Process pools need picklable, top-level
worker functions, hence :func:`count_chunk` lives in a module rather than in a snippet.
"""
from __future__ import annotations

import multiprocessing
from collections import Counter
from typing import Iterable, Sequence

from spaces_code.corpus import tokenize


def count_chunk(texts: Sequence[str]) -> Counter[str]:
    """Token counts of one chunk of texts (what each worker computes)."""
    counts: Counter[str] = Counter()
    for text in texts:
        # $c_k(w)$: occurrences of each token w in this chunk
        counts.update(tokenize(text))
    return counts


def chunked(texts: Sequence[str], chunk_size: int) -> list[Sequence[str]]:
    """Consecutive chunks of ``chunk_size`` texts (the last one may be shorter)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [texts[i:i + chunk_size] for i in range(0, len(texts), chunk_size)]


def merge_counts(partials: Iterable[Counter[str]]) -> dict[str, int]:
    r"""$c(w) = \sum_k c_k(w)$ as a plain ``dict`` (same type as the article's ``tokens``)."""
    total: Counter[str] = Counter()
    for partial in partials:
        # $c(w) = \sum_k c_k(w)$
        total.update(partial)
    return dict(total)


def parallel_word_count(texts: Iterable[str], processes: int = 2, chunk_size: int = 8,
                        start_method: str | None = None) -> dict[str, int]:
    """Word counts of ``texts`` computed by ``processes`` worker processes.

    The texts are cut into chunks of ``chunk_size``; each worker returns the ``Counter`` of its chunk
    and the parent merges them. ``start_method`` is passed to ``multiprocessing.get_context`` (``None``:
    the platform default). ``processes=1`` runs the same map-reduce in this process, without a pool.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    chunks = chunked(list(texts), chunk_size)
    if processes == 1:
        return merge_counts(map(count_chunk, chunks))
    context = multiprocessing.get_context(start_method)
    with context.Pool(processes) as pool:
        # unordered: a finished worker's counts are merged while the others still work
        return merge_counts(pool.imap_unordered(count_chunk, chunks))


def speedup(serial_seconds: float, parallel_seconds: float) -> float:
    r"""$S_P = T_1 / T_P$."""
    if parallel_seconds <= 0:
        raise ValueError("parallel time must be positive")
    # $S_P = T_1 / T_P$
    return serial_seconds / parallel_seconds
