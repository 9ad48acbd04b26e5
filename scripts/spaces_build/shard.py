"""Split the snippets of a build into N shards of about equal execution time.

``spaces build --execute-only --shard K/N`` runs shard K of :func:`plan`'s answer, so N machines (a
GitHub Actions matrix) execute the archive side by side; their ``.cache/`` folders merge by copying
files because every cache entry is its own content-addressed file.

The split is the classic LPT rule ("longest processing time first", Graham 1969): take the items
longest first and give each to the shard with the least work so far. Its makespan is at most
4/3 - 1/(3N) times the optimum; pytorch/tutorials shards its 20 CI workers the same way, from the
durations it recorded. Here ties are broken by key and shard number, so the answer depends only
on the set of ``(key, seconds)`` pairs, never on their order: every matrix job computes the same
plan from the same cache, without talking to the others.

Durations come from the cache (each entry records the seconds its run took); a snippet the cache
has never seen gets :func:`estimate_seconds`.
"""
from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Iterable, Sequence

# Without any recorded duration: what an archive snippet costs on a 2-core runner, measured on this
# archive's cold build (interpreter + torch/matplotlib start-up ~1.5 s, then ~0.4 s per KiB of
# source). Only the relative sizes matter for balancing, and recorded durations replace it.
STARTUP_SECONDS = 1.5
SECONDS_PER_KIB = 0.4


def parse(spec: str) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) as ``(K, N)``; raises ``ValueError`` with the accepted form."""
    try:
        k_text, n_text = spec.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard {spec!r}: expected K/N with integers, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {spec!r}: K must be between 1 and N")
    return k, n


def plan(items: Sequence[tuple[str, float]], n: int) -> list[list[str]]:
    """``n`` lists of keys; together they hold every key once, each list about ``sum / n`` seconds.

    Within a shard the keys come longest first (the order the executor wants). Keys must be unique
    and seconds finite and >= 0.
    """
    if n < 1:
        raise ValueError(f"need at least one shard, got {n}")
    seen: set[str] = set()
    for key, seconds in items:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen.add(key)
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"{key!r}: seconds must be finite and >= 0, got {seconds!r}")
    shards: list[list[str]] = [[] for _ in range(n)]
    # (load, shard number): the least loaded shard first, the lower number on a tie
    heap = [(0.0, i) for i in range(n)]
    for key, seconds in sorted(items, key=lambda item: (-float(item[1]), item[0])):
        load, i = heapq.heappop(heap)
        shards[i].append(key)
        heapq.heappush(heap, (load + float(seconds), i))
    return shards


def loads(items: Sequence[tuple[str, float]], shards: Sequence[Sequence[str]]) -> list[float]:
    """Predicted seconds of each shard."""
    seconds = dict(items)
    return [sum(seconds[key] for key in shard) for shard in shards]


def balance(items: Sequence[tuple[str, float]], n: int) -> float:
    """The longest shard's predicted seconds over the mean shard (1.0 is perfect)."""
    per_shard = loads(items, plan(items, n))
    mean = sum(per_shard) / n
    return max(per_shard) / mean if mean > 0 else 1.0


def estimate_seconds(source_bytes: int, known: Iterable[tuple[int, float]] = ()) -> float:
    """Expected seconds of a snippet the cache has never run, from the size of its source.

    ``known`` holds ``(source bytes, recorded seconds)`` of snippets the cache has run. With two
    sizes or more, a least-squares line ``seconds = start-up + rate * bytes`` through them (the
    median of the known seconds if the line has a negative part); with one, the fixed rule scaled to
    it; without any, the fixed rule for a 2-core runner. So the estimate follows the machine that
    filled the cache.
    """
    if source_bytes < 0:
        raise ValueError("source_bytes must be >= 0")

    def rule(size: float) -> float:
        return STARTUP_SECONDS + SECONDS_PER_KIB * size / 1024

    known = [(float(size), float(seconds)) for size, seconds in known if size >= 0 and seconds >= 0]
    if not known:
        return rule(source_bytes)
    if len({size for size, _ in known}) == 1:
        size, seconds = known[0][0], statistics.median(s for _, s in known)
        return seconds * rule(source_bytes) / rule(size)
    rate, startup = statistics.linear_regression([s for s, _ in known], [t for _, t in known])
    if rate < 0 or startup < 0:
        return statistics.median(t for _, t in known)
    return startup + rate * source_bytes
