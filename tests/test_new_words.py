"""Domain-term mining of #30: planted terms are discovered and the domain ratio singles them out."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from spaces_code.new_words import (DiscoveryConfig, cohesion, discover_words, domain_ratio, domain_terms,
                                   entropy, jieba_frequencies, log_likelihood_ratio, neighbour_entropies,
                                   ngram_counts, occurrences, precision_at_k, score_terms, segments)

FILLER = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"
DOMAIN_TERMS = ["卷积网络", "梯度下降", "注意力", "词向量"]
GENERAL_TERMS = ["天气预报", "火车站"]


def synthetic_corpus(planted: list[str], sentences: int, generator: torch.Generator) -> list[str]:
    """Sentences of random filler characters, each with one planted term at a random place."""
    texts = []
    for k in range(sentences):
        length = int(torch.randint(6, 14, (1,), generator=generator))
        chars = [FILLER[i] for i in torch.randint(0, len(FILLER), (length,), generator=generator).tolist()]
        cut = int(torch.randint(0, length + 1, (1,), generator=generator))
        term = planted[k % len(planted)]
        texts.append("".join(chars[:cut]) + term + "".join(chars[cut:]) + "。")
    return ["".join(texts[i:i + 20]) for i in range(0, len(texts), 20)]  # 20 sentences per "article"


@pytest.fixture
def corpora(generator):
    domain = synthetic_corpus(DOMAIN_TERMS + GENERAL_TERMS, 600, generator)
    general = synthetic_corpus(GENERAL_TERMS, 400, generator)
    return domain, general


def test_discovery_recovers_exactly_the_planted_terms(corpora):
    domain, general = corpora
    found = {w.word for w in discover_words(domain)}
    # sweep of 200 seeds: exact on every one (random filler bigrams reach a cohesion of ~log 4 < 2)
    assert found == set(DOMAIN_TERMS + GENERAL_TERMS)  # no filler n-gram, no piece like "卷积网"
    assert {w.word for w in discover_words(general)} == set(GENERAL_TERMS)


def test_domain_ratio_ranks_domain_terms_first(corpora):
    domain, general = corpora
    ranked = domain_terms(domain, general)
    assert {w.word for w, _, _ in ranked[:4]} == set(DOMAIN_TERMS)
    ratios = {w.word: r for w, _, r in ranked}
    # sweep of 200 seeds: the gap is at least 5.30 (log units); bound 1.7
    assert min(ratios[t] for t in DOMAIN_TERMS) > max(ratios[t] for t in GENERAL_TERMS) + 1.7
    for w, general_count, _ in ranked:
        assert general_count == (0 if w.word in DOMAIN_TERMS else 400 // len(GENERAL_TERMS))


def test_cohesion_and_entropy_by_hand():
    counts = ngram_counts(["abab", "ab"], max_len=2)
    assert counts == Counter({"a": 3, "b": 3, "ab": 3, "ba": 1})
    totals = {1: 6, 2: 4}
    assert cohesion("ab", counts, totals) == pytest.approx(math.log((3 / 4) / (3 / 6) ** 2), abs=1e-12)
    assert entropy(Counter({"x": 1, "y": 1})) == pytest.approx(math.log(2), abs=1e-12)
    assert entropy(Counter()) == 0.0
    # "ab" in "abab" + "ab": left neighbours ^, b, ^ (boundaries distinct); right b, $, $
    left, right = neighbour_entropies(["abab", "ab"], {"ab"})["ab"]
    assert left == pytest.approx(math.log(3), abs=1e-12) and right == pytest.approx(math.log(3), abs=1e-12)
    with pytest.raises(ValueError):
        cohesion("a", counts, totals)


def test_helpers_and_edge_cases():
    assert segments(["注意力(attention)机制,很好", ""]) == ["注意力", "机制", "很好"]
    assert occurrences(["啊啊啊", "啊.啊啊"], ["啊啊", "哦"]) == Counter({"啊啊": 3, "哦": 0})
    assert domain_ratio(9, 0, 100, 10) == pytest.approx(math.log(10 / 100) - math.log(1 / 10), abs=1e-12)
    assert domain_ratio(0, 0, 50, 50) == 0.0
    with pytest.raises(ValueError):
        domain_ratio(1, 1, 0, 10)
    assert discover_words([]) == [] and discover_words(["。。。"]) == []
    loose = DiscoveryConfig(min_count=3, min_cohesion=0.0, min_entropy=0.5)
    assert [w.word for w, _, _ in domain_terms(["词向量。"] * 3, ["向量"], loose)] == ["词向量"]
    with pytest.raises(ValueError):  # an empty general corpus has no frequencies to compare with
        domain_terms(["词向量"] * 3, [], loose)


def test_llr_is_the_contingency_g2():
    """G^2 = 2 sum O log(O / E) over the 2x2 table (occurrences / other positions x domain / general)."""
    for k1, n1, k2, n2 in [(10, 100, 1, 1000), (3, 50, 30, 500), (0, 40, 7, 70), (5, 5, 0, 9)]:
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        total = n1 + n2
        rows, cols = [n1, n2], [k1 + k2, total - k1 - k2]
        g2 = 2 * sum(o * math.log(o / (rows[i] * cols[j] / total))
                     for i in range(2) for j in range(2) if (o := table[i][j]) > 0)
        sign = 1 if k1 / n1 >= k2 / n2 else -1
        assert log_likelihood_ratio(k1, n1, k2, n2) == pytest.approx(sign * g2, rel=1e-10, abs=1e-10)
    assert log_likelihood_ratio(5, 100, 50, 1000) == pytest.approx(0.0, abs=1e-9)  # equal rates
    # evidence scales it, the ratio does not: 10x every count -> 10x G^2, same r
    assert log_likelihood_ratio(40, 1000, 2, 1000) * 10 == pytest.approx(log_likelihood_ratio(400, 10000, 20, 10000))
    assert domain_ratio(40, 2, 1000, 1000, 1e-9) == pytest.approx(domain_ratio(400, 20, 10000, 10000, 1e-9))
    with pytest.raises(ValueError):
        log_likelihood_ratio(1, 0, 1, 1)


def test_llr_against_a_frequency_table_ranks_domain_terms_first(corpora):
    """A general corpus given as a frequency table (as jieba's dictionary is): the general terms and
    the filler characters' words are frequent there, the domain terms absent; precision@4 is 1."""
    domain, general = corpora
    words = discover_words(domain)
    table = dict(occurrences(general, [w.word for w in words]))
    table.update({"火车站": 5000, "天气预报": 3000})  # a large general corpus knows them well
    general_size = 10 * sum(map(len, segments(general)))
    domain_size = sum(map(len, segments(domain)))
    for by in ("llr", "ratio"):
        # exact whenever discovery is (200 of 200 seeds): domain terms never occur in the general corpus
        ranked = score_terms(words, domain_size, table, general_size, by=by)
        assert precision_at_k([t.stats.word for t in ranked], set(DOMAIN_TERMS), 4) == 1.0
        assert all(t.llr < 0 for t in ranked if t.stats.word in GENERAL_TERMS)
        assert all(t.llr > 0 and t.general_count == 0 for t in ranked if t.stats.word in DOMAIN_TERMS)
    with pytest.raises(ValueError):
        score_terms(words, domain_size, table, general_size, by="count")


def test_precision_at_k():
    ranked = ["词向量", "我们", "分词", "一个"]
    assert precision_at_k(ranked, {"词向量", "分词"}, 1) == 1.0
    assert precision_at_k(ranked, {"词向量", "分词"}, 4) == 0.5
    assert precision_at_k(ranked, {"词向量", "分词"}, 8) == 0.25  # missing ranks count as misses
    with pytest.raises(ValueError):
        precision_at_k(ranked, set(), 0)


def test_jieba_dictionary_is_a_general_corpus():
    freq, total = jieba_frequencies()
    assert len(freq) > 300_000 and total > 10_000_000
    assert abs(total - sum(freq.values())) <= 1e-6 * total  # (the dictionary file repeats a few words)
    assert all(f > 0 for f in freq.values())
    assert freq["我们"] > freq["模型"] > 0 and "卷积网络" not in freq
