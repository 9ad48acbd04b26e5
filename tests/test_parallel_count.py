"""Word counting of #4: every path (monolithic, chunked, pool) runs the article's loop and gives its table."""
from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch

from spaces_code.corpus import (MORE_MARKER, chinese_words, read_posts, read_texts,
                                split_front_matter, tokenize)
from spaces_code.parallel_count import (chunked, chunked_count, count_chunk, count_ids, count_tokens,
                                       expected_distinct, merge_counts, parallel_word_count, speedup,
                                       zipf_probabilities, zipf_stream)


def article_loop(texts) -> dict[str, int]:
    """The article's loop, used as the reference."""
    tokens = {}
    for text in texts:
        for token in tokenize(text):
            tokens[token] = tokens.get(token, 0) + 1
    return tokens


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(read_texts())


def test_corpus_is_the_archive(texts):
    posts = read_posts()
    assert len(texts) == len(posts) >= 40
    for text in texts:
        assert not text.startswith("---")  # front matter stripped
        assert MORE_MARKER not in text and "--8<--" not in text  # only the original excerpt
        assert "missing-image" not in text and "点击阅读全文" not in text  # no archive chrome
        assert re.search(r"[\u4e00-\u9fff]", text)
    assert all(post.categories for post in posts)
    assert list(read_texts(repeat=3)) == texts * 3
    with pytest.raises(ValueError):
        list(read_texts(repeat=0))


def test_split_front_matter():
    fields, body = split_front_matter("---\ntitle: A\ntags:\n- x\n- y\n---\n\nbody\n<!-- more -->\nadded\n")
    assert fields == {"title": "A", "tags": ["x", "y"]}
    assert body == "body\n"
    figure = ('<figure class="missing-image" markdown="span">\n  [:icon: 原图](https://kexue.fm/)\n'
              '  <figcaption>图书馆一角</figcaption>\n</figure>\n\n[点击阅读全文...](https://kexue.fm/archives/1)\n')
    assert split_front_matter("正文\n\n" + figure) == ({}, "正文\n\n图书馆一角\n")
    assert split_front_matter("no front matter") == ({}, "no front matter\n")
    with pytest.raises(ValueError):
        split_front_matter("---\ntitle: A\n")


@pytest.mark.parametrize("text", ["", "   \n", "什么时候多进程的加速比可以大于1?",
                                  "Keras：Tensorflow的黄金标准 (2019)\n\n  词频\t统计"])
def test_tokenize_joins_back(text):
    tokens = tokenize(text)
    # segmentation only cuts the text: its tokens concatenate to the text without whitespace
    assert "".join(tokens) == re.sub(r"\s+", "", text)
    assert all(token.strip() == token and token for token in tokens)


def test_tokenize_joins_back_on_archive(texts):
    for text in texts[:10]:
        assert "".join(tokenize(text)) == re.sub(r"\s+", "", text)


def test_chinese_words_are_cjk_only():
    words = chinese_words("词向量 word2vec 出现在2013年, 是吗?")
    assert words and all(re.fullmatch(r"[\u4e00-\u9fff]+", w) for w in words)
    assert "".join(words) == "词向量出现在年是吗"


@pytest.mark.parametrize("processes,chunk_size", [(1, 8), (2, 8), (2, 1), (3, 100)])
def test_parallel_equals_serial(texts, processes, chunk_size):
    reference = article_loop(texts)
    assert parallel_word_count(texts, processes=processes, chunk_size=chunk_size) == reference


def test_parallel_empty_and_merge():
    assert parallel_word_count([], processes=2) == {}
    assert merge_counts([count_chunk(["模型 模型"]), count_chunk(["模型"])]) == {"模型": 3}
    assert [len(c) for c in chunked(list("abcde"), 2)] == [2, 2, 1]
    with pytest.raises(ValueError):
        chunked([], 0)
    with pytest.raises(ValueError):
        parallel_word_count(["a"], processes=0)


def test_count_tokens_is_the_article_loop():
    tokens = ["模型", "的", "模型", 3, 3, 3]
    assert count_tokens(tokens) == {"模型": 2, "的": 1, 3: 3}
    counts = {"的": 5}
    assert count_tokens(["的"], counts) is counts and counts == {"的": 6}  # adds to an existing table


def test_every_path_counts_a_zipf_stream_alike(generator):
    ids = zipf_stream(60_000, zipf_probabilities(20_000), generator)
    reference = dict(Counter(ids.tolist()))
    monolithic = chunked_count(ids, 1)
    assert monolithic == reference and sum(monolithic.values()) == ids.numel()
    assert chunked_count(ids, 7) == reference  # serial, chunk by chunk, then merged
    assert chunked_count(ids, 5, processes=2) == reference  # the same loop in two worker processes
    assert count_ids(ids[:0]) == {}
    with pytest.raises(ValueError):
        chunked_count(ids, 0)


def test_zipf_stream_comes_from_the_generator_only(seed):
    """Same generator seed under two different global seeds: the same stream."""
    probs = zipf_probabilities(1000, 1.1)
    streams = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        streams.append(zipf_stream(5000, probs, torch.Generator().manual_seed(seed)))
    assert torch.equal(streams[0], streams[1])


def test_zipf_stream_has_the_zipf_frequencies(generator):
    probs = zipf_probabilities(10_000, 1.0)
    assert abs(float(probs.sum()) - 1) < 1e-12 and float(probs[0] / probs[9]) == pytest.approx(10.0)
    n = 100_000
    counts = torch.bincount(zipf_stream(n, probs, generator), minlength=10_000).double()
    # each count is Binomial(n, p_w): 6 standard deviations (+1) hold with probability > 1 - 1e-8 per word
    sigma = (n * probs * (1 - probs)).sqrt()
    assert bool(((counts[:100] - n * probs[:100]).abs() <= 6 * sigma[:100] + 1).all())


def test_chunk_dictionaries_follow_expected_distinct(generator):
    """A worker's dictionary holds D(m) = sum_w 1 - (1 - p_w)^m words, which grows sub-linearly in m."""
    probs = zipf_probabilities(200_000, 1.0)
    ids = zipf_stream(400_000, probs, generator)
    for m in (1_000, 20_000, 100_000, 400_000):
        expected = expected_distinct(probs, m)
        measured = len(count_ids(ids[:m]))
        # occupancy indicators are negatively associated, so Chernoff holds:
        # P(|X - D| >= 6 sqrt(D)) <= 2 exp(-12) = 1.2e-5
        assert abs(measured - expected) <= 6 * math.sqrt(expected), (m, measured, expected)
    # the formula: D(1) = 1, D(m) <= min(m, V), concave: P chunks of m/P tokens hold more than D(m) in all,
    # each less than D(m)
    assert expected_distinct(probs, 1) == pytest.approx(1.0)
    whole = expected_distinct(probs, 400_000)
    assert whole < 200_000 and whole < 400_000
    for parts in (2, 4, 8):
        part = expected_distinct(probs, 400_000 // parts)
        assert part < whole < parts * part


def test_speedup():
    assert speedup(10.0, 4.0) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        speedup(1.0, 0.0)
