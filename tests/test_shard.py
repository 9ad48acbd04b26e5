"""spaces_build.shard: a deterministic split of the snippets into N shards balanced by seconds."""
from __future__ import annotations

import itertools

import pytest

from spaces_build import shard

pytestmark = pytest.mark.engine

# Durations of the archive's kind (seconds), with ties and a zero.
DURATIONS = [7.5, 0.0, 3.25, 3.25, 12.0, 1.5, 2.0, 9.75, 4.0, 4.0, 0.5, 6.0]
ITEMS = [(f"snippets/a{i:02d}/s.py", s) for i, s in enumerate(DURATIONS)]


def test_every_key_in_exactly_one_shard():
    for n in (1, 2, 3, 4, 7, 20):
        shards = shard.plan(ITEMS, n)
        assert len(shards) == n
        keys = [key for part in shards for key in part]
        assert sorted(keys) == sorted(key for key, _ in ITEMS)


def test_same_answer_for_any_order_of_the_input():
    want = shard.plan(ITEMS, 3)
    for turn in range(len(ITEMS)):
        rotated = ITEMS[turn:] + ITEMS[:turn]
        assert shard.plan(rotated, 3) == want
        assert shard.plan(rotated[::-1], 3) == want
    small = ITEMS[:6]
    want_small = shard.plan(small, 2)
    for order in itertools.permutations(small):
        assert shard.plan(list(order), 2) == want_small


def test_greedy_bound_holds():
    # Graham's list-scheduling bound, true of every greedy assignment: the longest shard is at most
    # the mean plus (1 - 1/n) of the longest item.
    for n in (2, 3, 4, 5):
        per_shard = shard.loads(ITEMS, shard.plan(ITEMS, n))
        total = sum(s for _, s in ITEMS)
        assert max(per_shard) <= total / n + (1 - 1 / n) * max(DURATIONS) + 1e-9
        assert sum(per_shard) == pytest.approx(total)


def _optimum(durations: list[float], n: int) -> float:
    best = float("inf")
    for assignment in itertools.product(range(n), repeat=len(durations)):
        per_shard = [0.0] * n
        for d, i in zip(durations, assignment):
            per_shard[i] += d
        best = min(best, max(per_shard))
    return best


@pytest.mark.parametrize("n", [2, 3])
def test_lpt_within_its_guarantee_of_the_optimum(n):
    # LPT's makespan is at most (4/3 - 1/(3n)) times the optimum (Graham 1969); the optimum by brute force.
    for start in range(0, len(DURATIONS) - 7):
        durations = DURATIONS[start:start + 8]
        items = [(f"k{i}", d) for i, d in enumerate(durations)]
        got = max(shard.loads(items, shard.plan(items, n)))
        assert got <= (4 / 3 - 1 / (3 * n)) * _optimum(durations, n) + 1e-9


def test_graham_worst_case_is_met_exactly():
    # {3,3,2,2,2} on 2 shards: the optimum is {3,3} {2,2,2} = 6; LPT gives 7 = (4/3 - 1/6) * 6, its bound.
    items = [("a", 3.0), ("b", 3.0), ("c", 2.0), ("d", 2.0), ("e", 2.0)]
    assert shard.plan(items, 2) == [["a", "c", "e"], ["b", "d"]]
    assert shard.loads(items, shard.plan(items, 2)) == [7.0, 5.0]
    assert shard.balance(items, 2) == pytest.approx(7 / 6)


def test_longest_first_within_a_shard_and_more_shards_than_items():
    shards = shard.plan([("x", 1.0), ("y", 5.0)], 4)
    assert shards == [["y"], ["x"], [], []]
    for part in shard.plan(ITEMS, 3):
        seconds = [dict(ITEMS)[key] for key in part]
        assert seconds == sorted(seconds, reverse=True)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="twice"):
        shard.plan([("a", 1.0), ("a", 2.0)], 2)
    with pytest.raises(ValueError, match="finite"):
        shard.plan([("a", float("nan"))], 2)
    with pytest.raises(ValueError, match="finite"):
        shard.plan([("a", -1.0)], 2)
    with pytest.raises(ValueError, match="at least one"):
        shard.plan(ITEMS, 0)


def test_parse():
    assert shard.parse("2/4") == (2, 4)
    assert shard.parse("1/1") == (1, 1)
    for bad in ("0/3", "4/3", "3", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="K/N|between"):
            shard.parse(bad)


def test_estimate_grows_with_size_and_follows_recorded_durations():
    sizes = [0, 500, 1024, 4096, 20000]
    guesses = [shard.estimate_seconds(size) for size in sizes]
    assert guesses[0] > 0 and guesses == sorted(guesses) and len(set(guesses)) == len(guesses)
    # Recorded runs that cost exactly 1 s + 1 ms per byte: the estimate recovers the rule.
    known = [(size, 1.0 + size / 1000) for size in (200, 1000, 3000)]
    assert shard.estimate_seconds(2000, known) == pytest.approx(3.0)
    # A machine twice as slow per byte gives twice the per-byte part.
    slow = [(size, 1.0 + 2 * size / 1000) for size in (200, 1000, 3000)]
    assert shard.estimate_seconds(2000, slow) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        shard.estimate_seconds(-1)


def test_estimate_from_one_recorded_run_and_from_inconsistent_ones():
    one = shard.estimate_seconds(2048, [(1024, 4.0)])
    assert one == pytest.approx(4.0 * shard.estimate_seconds(2048) / shard.estimate_seconds(1024))
    # Bigger snippets that ran faster: no trend to follow, the median of what was recorded.
    assert shard.estimate_seconds(5000, [(100, 9.0), (1000, 5.0), (3000, 1.0)]) == pytest.approx(5.0)
