"""The archive's own article texts as a small Chinese corpus, and the tokenizer used on them.

Used by the companions of 什么时候多进程的加速比可以大于1？ (https://kexue.fm/archives/7031),
最小熵原理（四）：“物以类聚”之从图书馆到词向量 (https://kexue.fm/archives/6191) and
分享一次专业领域词汇的无监督挖掘 (https://kexue.fm/archives/6540), which all need real Chinese text.

This is the one library module that reads files. The word-count loop of the multiprocessing article
calls ``read_texts()`` with no argument, so the corpus cannot be passed in: the function must find it.
The corpus is the excerpts stored in ``docs/posts/*.md``, located relative to the package
(``Path(__file__).parents[1]``), so no download is ever needed. Everything else in ``spaces_code``
takes texts or counts as arguments.

Each post keeps only the original excerpt's Markdown: the YAML front matter is stripped, and so is
what this archive added around the text — everything after the ``<!-- more -->`` line (the companion
sections, so the corpus does not change when code is added to a page), the markup of each missing-image
placeholder (its caption, which is the original's, stays) and the closing "点击阅读全文..." link.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import jieba

# jieba prints "Building prefix dict..." on its first call; the snippets' output must stay clean.
jieba.setLogLevel(logging.WARNING)

POSTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "posts"
MORE_MARKER = "<!-- more -->"
# the archive's placeholder for a missing image; group 1 is the original caption
FIGURE_PLACEHOLDER = re.compile(
    r'<figure class="missing-image".*?<figcaption>(.*?)</figcaption>\s*</figure>', re.DOTALL)
READ_MORE_LINK = re.compile(r"^\[点击阅读全文\.\.\.\]\(.*$", re.MULTILINE)
# a run of CJK unified ideographs: what the word statistics of #29 and #30 look at
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Post:
    """One archived excerpt: its slug, front-matter lists and Markdown body."""

    slug: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    text: str


def split_front_matter(markdown: str) -> tuple[dict, str]:
    """Split the YAML front matter from the body, with the archive's one parser (``spaces_build.parsing``).

    Returns ``(fields, body)``; the body is the text up to (not including) the ``<!-- more -->`` line
    when there is one, with image placeholders reduced to their captions and the read-more link removed.
    """
    from spaces_build import parsing

    if markdown.startswith("---") and not parsing.front_matter(markdown).present:
        raise ValueError("front matter opened with '---' but never closed")
    fields, body = parsing.split(markdown)
    more = body.find(MORE_MARKER)
    if more >= 0:
        body = body[:more]
    body = FIGURE_PLACEHOLDER.sub(lambda match: match.group(1), body)
    body = READ_MORE_LINK.sub("", body)
    return fields, body.strip() + "\n"


def read_posts(posts_dir: Path = POSTS_DIR) -> list[Post]:
    """All archived excerpts, sorted by slug."""
    posts = []
    for path in sorted(posts_dir.glob("*.md")):
        fields, body = split_front_matter(path.read_text(encoding="utf-8"))
        posts.append(Post(slug=path.stem,
                          categories=tuple(map(str, fields.get("categories") or ())),
                          tags=tuple(map(str, fields.get("tags") or ())),
                          text=body))
    if not posts:
        raise FileNotFoundError(f"no posts found under {posts_dir}")
    return posts


def read_texts(repeat: int = 1) -> Iterator[str]:
    """Yield the Markdown body of every archived excerpt (front matter stripped), ``repeat`` times.

    ``repeat`` only makes the workload larger for timing; the texts are the same each round.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    texts = [post.text for post in read_posts()]
    for _ in range(repeat):
        yield from texts


def tokenize(text: str) -> list[str]:
    """jieba's default (accurate-mode, HMM on) segmentation; whitespace tokens are dropped."""
    return [token for token in jieba.lcut(text) if token.strip()]


def chinese_words(text: str) -> list[str]:
    """The jieba tokens made only of CJK characters (drops punctuation, Latin, digits, markup)."""
    return [token for token in tokenize(text) if CJK_RUN.fullmatch(token)]
