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

$f$ the occurrence counts and $N$ the corpus sizes. The ratio of a word seen 4 times in the domain
and never in a small general corpus is as high as that of a real term, so it also helps to ask how
sure the difference is: Dunning's log-likelihood ratio compares one shared rate $p$ with two rates
$p_D = f_D/N_D$, $p_G = f_G/N_G$ for the binomial counts,

$$ G^2(w) = 2\big[\ell(f_D; N_D, p_D) + \ell(f_G; N_G, p_G) - \ell(f_D; N_D, p) - \ell(f_G; N_G, p)\big],
   \qquad \ell(k; n, q) = k\log q + (n - k)\log(1 - q), \quad p = \frac{f_D + f_G}{N_D + N_G}, $$

signed $+$ when the word is more frequent in the domain. It grows with the evidence (scaling every
count by $c$ scales $G^2$ by $c$), where the ratio does not.

The general corpus can be a list of texts or a frequency table: jieba's bundled dictionary
(:func:`jieba_frequencies`, ~349k words counted over ~60M tokens of general Chinese text) is the one
used on the page. Rankings are judged by precision@k against a list of known terms (the archive's
own tags, ``taxonomy.yml``).
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

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


def log_likelihood_ratio(domain_count: int, domain_size: int, general_count: int, general_size: int) -> float:
    r"""Signed $G^2$ of the two binomial counts (see the module docstring); 0 when the rates are equal."""
    if domain_size <= 0 or general_size <= 0:
        raise ValueError("corpus sizes must be positive")

    def loglik(k: int, n: int, q: float) -> float:
        # $\ell(k; n, q) = k\log q + (n-k)\log(1-q)$, with $0\log 0 = 0$
        return (k * math.log(q) if k else 0.0) + ((n - k) * math.log1p(-q) if n - k else 0.0)

    p_domain, p_general = domain_count / domain_size, general_count / general_size
    pooled = (domain_count + general_count) / (domain_size + general_size)
    # $G^2 = 2[\ell(f_D;N_D,p_D) + \ell(f_G;N_G,p_G) - \ell(f_D;N_D,p) - \ell(f_G;N_G,p)]$
    g2 = 2 * (loglik(domain_count, domain_size, p_domain) + loglik(general_count, general_size, p_general)
              - loglik(domain_count, domain_size, pooled) - loglik(general_count, general_size, pooled))
    return max(g2, 0.0) if p_domain >= p_general else -max(g2, 0.0)


@dataclass(frozen=True)
class ScoredTerm:
    stats: WordStats
    general_count: int
    ratio: float  # log domain ratio r(w)
    llr: float  # signed G^2


def score_terms(words: Iterable[WordStats], domain_size: int, general_counts: Mapping[str, int],
                general_size: int, smoothing: float = 1.0, by: str = "llr") -> list[ScoredTerm]:
    """Both scores of each discovered word against a general frequency table, best first by ``by``
    (``"llr"`` or ``"ratio"``; ties: more frequent first)."""
    if by not in ("llr", "ratio"):
        raise ValueError(f"by must be 'llr' or 'ratio', got {by!r}")
    scored = [ScoredTerm(w, general_counts.get(w.word, 0),
                         domain_ratio(w.count, general_counts.get(w.word, 0), domain_size, general_size, smoothing),
                         log_likelihood_ratio(w.count, domain_size, general_counts.get(w.word, 0), general_size))
              for w in words]
    return sorted(scored, key=lambda t: (-getattr(t, by), -t.stats.count, t.stats.word))


def precision_at_k(ranked: list[str], relevant: set[str], k: int) -> float:
    """Share of the first ``k`` ranked words that are in ``relevant`` (k larger than the list: over k)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return sum(word in relevant for word in ranked[:k]) / k


def jieba_frequencies() -> tuple[dict[str, int], int]:
    """jieba's bundled dictionary as a general corpus: ``(word -> frequency, total frequency)``.

    The dictionary's counts come from a large general Chinese corpus (~60M tokens); its prefix entries
    of frequency 0 are dropped.
    """
    import jieba

    jieba.dt.check_initialized()
    return {word: freq for word, freq in jieba.dt.FREQ.items() if freq > 0}, jieba.dt.total
