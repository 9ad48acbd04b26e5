r"""分享一次专业领域词汇的无监督挖掘 — https://kexue.fm/archives/6540

Unsupervised mining of domain terms in two steps, as in the article: (1) new-word discovery on the
domain corpus and on a general corpus, (2) keep the words that are much more frequent in the domain.

(1) A character n-gram $w$ is a word candidate when it is frequent, internally cohesive and free at
both ends (the statistics behind the author's ``nlp zero`` library). With $p(\cdot)$ the frequency of a
string among all n-grams of its length, cohesion is the smallest pointwise mutual information over the
ways to cut $w$ in two,

$$ \mathrm{coh}(w) = \min_{w = ab} \log\frac{p(w)}{p(a)\,p(b)} , $$

and freedom is the entropy of the characters seen just before (after) $w$,

$$ H_L(w) = -\sum_{c} p(c\,|\,\cdot w)\log p(c\,|\,\cdot w), \qquad
   H_R(w) = -\sum_{c} p(c\,|\,w\,\cdot)\log p(c\,|\,w\,\cdot). $$

A text boundary (punctuation, Latin, line end) next to $w$ counts as a neighbour seen once.

(2) The domain ratio compares relative frequencies with add-$\alpha$ smoothing,

$$ r(w) = \log\frac{(f_D(w) + \alpha) / N_D}{(f_G(w) + \alpha) / N_G} , $$

$f$ the occurrence counts and $N$ the corpus sizes in characters.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

from spaces_code.corpus import CJK_RUN


@dataclass(frozen=True)
class WordStats:
    word: str
    count: int
    cohesion: float  # min over cuts of log p(w) / (p(a) p(b))
    left_entropy: float  # nats
    right_entropy: float  # nats


@dataclass(frozen=True)
class DiscoveryConfig:
    max_len: int = 4  # longest candidate, in characters
    min_count: int = 5  # occurrences in the corpus
    min_cohesion: float = 2.0  # log-PMI of the weakest cut
    min_entropy: float = 1.0  # both neighbour entropies, nats


def segments(texts: Iterable[str]) -> list[str]:
    """The runs of CJK characters of the texts: n-grams never cross punctuation or Latin text."""
    return [run for text in texts for run in CJK_RUN.findall(text)]


def ngram_counts(runs: Iterable[str], max_len: int) -> Counter[str]:
    """Occurrences of every substring of length 1..max_len inside the runs."""
    counts: Counter[str] = Counter()
    for run in runs:
        for start in range(len(run)):
            for length in range(1, min(max_len, len(run) - start) + 1):
                counts[run[start:start + length]] += 1
    return counts


def cohesion(word: str, counts: Counter[str], totals: dict[int, int]) -> float:
    r"""$\min_{w=ab}\log p(w)/(p(a)p(b))$ with $p(s)$ = count(s) / (number of n-grams of len(s))."""
    if len(word) < 2:
        raise ValueError("cohesion needs a word of at least two characters")

    def prob(s: str) -> float:
        return counts[s] / totals[len(s)]

    # $\mathrm{coh}(w) = \min_{w=ab} \log \frac{p(w)}{p(a)p(b)}$
    return min(math.log(prob(word) / (prob(word[:cut]) * prob(word[cut:]))) for cut in range(1, len(word)))


def neighbour_entropies(runs: Iterable[str], words: set[str]) -> dict[str, tuple[float, float]]:
    """Left and right neighbour entropies (nats) of each word; a boundary is a neighbour seen once."""
    lengths = sorted({len(word) for word in words})
    left: dict[str, Counter[str]] = defaultdict(Counter)
    right: dict[str, Counter[str]] = defaultdict(Counter)
    boundary = 0  # each boundary gets its own symbol
    for run in runs:
        for length in lengths:
            for start in range(len(run) - length + 1):
                word = run[start:start + length]
                if word not in words:
                    continue
                boundary += 1
                left[word][run[start - 1] if start > 0 else f"^{boundary}"] += 1
                right[word][run[start + length] if start + length < len(run) else f"${boundary}"] += 1
    return {word: (entropy(left[word]), entropy(right[word])) for word in words}


def entropy(counts: Counter[str]) -> float:
    r"""$H = -\sum_c p(c)\log p(c)$ in nats (0 for an empty counter)."""
    total = sum(counts.values())
    # $H = -\sum_c p(c)\log p(c)$; max(0.0, .) turns the -0.0 of a single neighbour into 0.0
    return max(0.0, -sum(n / total * math.log(n / total) for n in counts.values())) if total else 0.0


def discover_words(texts: Iterable[str], config: DiscoveryConfig = DiscoveryConfig()) -> list[WordStats]:
    """New-word discovery: frequent, cohesive, free n-grams of 2..max_len characters.

    Returns the words that pass every threshold of ``config``, most frequent first.
    """
    runs = segments(texts)
    counts = ngram_counts(runs, config.max_len)
    totals: dict[int, int] = Counter()
    for gram, n in counts.items():
        totals[len(gram)] += n
    candidates = {gram: cohesion(gram, counts, totals) for gram, n in counts.items()
                  if len(gram) >= 2 and n >= config.min_count}
    candidates = {gram: coh for gram, coh in candidates.items() if coh >= config.min_cohesion}
    freedom = neighbour_entropies(runs, set(candidates))
    words = [WordStats(gram, counts[gram], coh, *freedom[gram]) for gram, coh in candidates.items()
             if min(freedom[gram]) >= config.min_entropy]
    return sorted(words, key=lambda w: (-w.count, w.word))


def occurrences(texts: Iterable[str], words: Iterable[str]) -> Counter[str]:
    """How often each word occurs (overlapping occurrences counted) in the texts."""
    runs = segments(texts)
    return Counter({word: sum(len(re.findall(f"(?={re.escape(word)})", run)) for run in runs)
                    for word in words})


def domain_ratio(domain_count: int, general_count: int, domain_size: int, general_size: int,
                 smoothing: float = 1.0) -> float:
    r"""$r(w) = \log\frac{(f_D + \alpha)/N_D}{(f_G + \alpha)/N_G}$."""
    if domain_size <= 0 or general_size <= 0 or smoothing <= 0:
        raise ValueError("corpus sizes and smoothing must be positive")
    # $r(w) = \log\frac{(f_D(w) + \alpha) / N_D}{(f_G(w) + \alpha) / N_G}$
    return (math.log((domain_count + smoothing) / domain_size)
            - math.log((general_count + smoothing) / general_size))


def domain_terms(domain_texts: list[str], general_texts: list[str],
                 config: DiscoveryConfig = DiscoveryConfig(),
                 smoothing: float = 1.0) -> list[tuple[WordStats, int, float]]:
    """Words discovered in the domain corpus, with their general-corpus count and domain ratio.

    Sorted by decreasing ratio (ties: more frequent first).
    """
    words = discover_words(domain_texts, config)
    general = occurrences(general_texts, [w.word for w in words])
    domain_size = sum(map(len, segments(domain_texts)))
    general_size = sum(map(len, segments(general_texts)))
    scored = [(w, general[w.word],
               domain_ratio(w.count, general[w.word], domain_size, general_size, smoothing))
              for w in words]
    return sorted(scored, key=lambda item: (-item[2], -item[0].count, item[0].word))
