"""Helpers shared by the site tests (test_frontmatter, test_site, test_browser): posts, formulas, HTML text."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import yaml

from spaces_build import parsing

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
POSTS = DOCS / "posts"
SEEDS = ROOT / "sources" / "seeds"
TAXONOMY = ROOT / "taxonomy.yml"

# one parser for the archive's Markdown: the build's (spaces_build.parsing)
MATH = parsing.MATH


def post_files() -> list[Path]:
    return sorted(POSTS.glob("*.md"))


def split_post(path: Path) -> tuple[dict, str]:
    """(front matter, Markdown body) of a post."""
    return split_text(path.read_text(encoding="utf-8"), str(path))


def split_text(text: str, name: str = "post") -> tuple[dict, str]:
    if not parsing.front_matter(text).present:
        raise ValueError(f"{name}: no front matter")
    return parsing.split(text)


def prose_markdown(body: str) -> str:
    """Markdown without code (fenced blocks, inline code) and HTML comments."""
    return parsing.prose(body)


def formulas(body: str) -> list[str]:
    """Every formula of a post's Markdown, in order."""
    return parsing.formulas(body)


def taxonomy() -> dict[str, list[str]]:
    return yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))


class _ArticleText(HTMLParser):
    """Text of the page's <article>; formulas (.arithmatex) collected apart, code left out."""

    def __init__(self, include_code: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.SKIP = {"script", "style", "svg"} | (set() if include_code else {"pre", "code"})
        self.depth = 0          # depth inside <article>
        self.skip = 0           # depth inside a skipped element
        self.math_depth = 0     # depth inside an .arithmatex element
        self.text: list[str] = []
        self.math: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "hr", "input", "meta", "link", "wbr", "source"):
            return
        classes = (dict(attrs).get("class") or "").split()
        if self.depth == 0:
            if tag == "article" and "md-content__inner" in classes:
                self.depth = 1
                self._stack = [(tag, False, False)]
            return
        is_skip = tag in self.SKIP or "headerlink" in classes
        is_math = "arithmatex" in classes and not self.math_depth
        tex = dict(attrs).get("data-tex") if is_math else None
        if tex is not None:  # typeset at build time: the TeX is in data-tex, the content is SVG
            self.math.append(tex)
            self.text.append("\u2063")
            is_skip, is_math = True, False
        self._stack.append((tag, is_skip, is_math))
        self.depth += 1
        if is_skip:
            self.skip += 1
        if is_math:
            self.math_depth = 1
            self.math.append("")
            self.text.append("\u2063")
        elif self.math_depth:
            self.math_depth += 1

    def handle_endtag(self, tag):
        if self.depth == 0 or tag in ("br", "img", "hr", "input", "meta", "link", "wbr", "source"):
            return
        # tolerate unclosed tags: pop until the matching one
        while self._stack:
            name, is_skip, is_math = self._stack.pop()
            self.depth -= 1
            if is_skip:
                self.skip -= 1
            if is_math:
                self.math_depth = 0
            elif self.math_depth:
                self.math_depth -= 1
            if name == tag:
                break
        if self.depth == 0:
            self._stack = []

    def handle_data(self, data):
        if self.depth == 0 or self.skip:
            return
        if self.math_depth:
            self.math[-1] += data
        else:
            self.text.append(data)


def article_text(page_html: str, include_code: bool = False) -> tuple[str, list[str]]:
    """(visible prose of the article, formulas as written in the .arithmatex elements)."""
    parser = _ArticleText(include_code)
    parser.feed(page_html)
    parser.close()
    return "".join(parser.text), parser.math


def strip_delimiters(formula: str) -> str:
    """The TeX inside ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]`` (environments are kept)."""
    f = formula.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if f.startswith(left) and f.endswith(right) and len(f) >= len(left) + len(right):
            return f[len(left):len(f) - len(right)].strip()
    return f


def unescape(text: str) -> str:
    return html.unescape(text)
