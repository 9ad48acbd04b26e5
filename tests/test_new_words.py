"""Domain-term mining of #30: planted terms are discovered and the domain ratio singles them out."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from spaces_code.new_words import (DiscoveryConfig, cohesion, discover_words, domain_ratio, domain_terms,
                                   entropy, neighbour_entropies, ngram_counts, occurrences, segments)

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


@pytest.fixture(scope="module")
def corpora():
    generator = torch.Generator().manual_seed(0)
    domain = synthetic_corpus(DOMAIN_TERMS + GENERAL_TERMS, 600, generator)
    general = synthetic_corpus(GENERAL_TERMS, 400, generator)
    return domain, general


def test_discovery_recovers_exactly_the_planted_terms(corpora):
    domain, general = corpora
    found = {w.word for w in discover_words(domain)}
    assert found == set(DOMAIN_TERMS + GENERAL_TERMS)  # no filler n-gram, no piece like "卷积网"
    assert {w.word for w in discover_words(general)} == set(GENERAL_TERMS)


def test_domain_ratio_ranks_domain_terms_first(corpora):
    domain, general = corpora
    ranked = domain_terms(domain, general)
    assert {w.word for w, _, _ in ranked[:4]} == set(DOMAIN_TERMS)
    ratios = {w.word: r for w, _, r in ranked}
    assert min(ratios[t] for t in DOMAIN_TERMS) > max(ratios[t] for t in GENERAL_TERMS) + 2.0
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
