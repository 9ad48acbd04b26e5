"""Word counting of #4: the pool's merged counts equal the article's serial loop exactly."""
from __future__ import annotations

import re

import pytest

from spaces_code.corpus import (MORE_MARKER, chinese_words, read_posts, read_texts,
                                split_front_matter, tokenize)
from spaces_code.parallel_count import chunked, count_chunk, merge_counts, parallel_word_count, speedup


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


def test_speedup():
    assert speedup(10.0, 4.0) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        speedup(1.0, 0.0)
