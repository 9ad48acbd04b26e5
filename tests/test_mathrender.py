"""spaces_build.mathrender: formulas typeset at build time by MathJax itself, with plain Python-Markdown.

No MkDocs, no site build: ``markdown.markdown()`` with ``pymdownx.arithmatex`` and the extension (the
real ``mkdocs build`` case is tests/test_build_validation.py::test_bad_formula_fails_a_plain_mkdocs_build). One
node process serves the whole module (the extension keeps it for the life of the Python process).
"""
from __future__ import annotations

import os
import re
from html import unescape
from pathlib import Path

import markdown
import pytest
from markdown.treeprocessors import Treeprocessor

from spaces_build.mathrender import MathRenderError
from spaces_build.mathrender import extension as mr_extension
from spaces_build.mathrender.worker_client import shared_worker

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]
CONTAINER = re.compile(r'<(span|div) class="arithmatex" data-tex="[^"]*">(<svg class="mjx-glyphs"[^>]*><defs>.*?</defs></svg>)?'
                       r'(<mjx-container .*?</mjx-container>)</\1>', re.S)


def render(text: str, cache_dir, **config) -> str:
    return markdown.markdown(
        text, extensions=["pymdownx.arithmatex", "spaces_build.mathrender"],
        extension_configs={"pymdownx.arithmatex": {"generic": True},
                           "spaces_build.mathrender": {"cache_dir": str(cache_dir), **config}})


def assistive(html: str) -> list[str]:
    """The assistive MathML of every formula, in order."""
    return re.findall(r"<mjx-assistive-mml[^>]*>(.*?)</mjx-assistive-mml>", html, re.S)


def labels(mml: str) -> list[str]:
    """Equation numbers shown by a formula: the first cell of each labelled row."""
    return re.findall(r"<mlabeledtr>\s*<mtd[^>]*>\s*<mtext>([^<]*)</mtext>", mml)


ARTICLE = r"""# A page

Inline $x<y$ and a reference to a later equation: $\eqref{eq:later}$.

$$
\begin{aligned} a &= \boldsymbol{b} \\ c &< \mathscr{L} \end{aligned}
$$

\begin{equation}\label{eq:first} f(x) = \left\{ \begin{array}{ll} 1 & x > 0 \\ 0 & x \le 0 \end{array} \right. \end{equation}

Some prose, then a tagged one:

$$E = mc^2 \tag{7}$$

\begin{equation}\label{eq:later} g = \frac{1}{2} \end{equation}

Back references: $\eqref{eq:first}$ and $\eqref{eq:later}$.
"""


def test_round_trip_every_formula_typeset(tmp_path):
    html = render(ARTICLE, tmp_path)
    blocks = CONTAINER.findall(html)
    # as in the Markdown: 4 inline ($x<y$ and three \eqref), 4 display
    assert len(blocks) == 8, html[:2000]
    assert html.count('<div class="arithmatex"') == 4 and html.count('<span class="arithmatex"') == 4
    # each keeps the TeX it was typeset from, as arithmatex wrote it (never shown: an attribute)
    assert re.findall(r'class="arithmatex" data-tex="([^"]*)"', html)[:2] == [
        r"\(x&lt;y\)", r"\(\eqref{eq:later}\)"]
    # each glyph is defined once in the page, by or before the first formula that uses it (so any
    # leading part of the page, e.g. a blog excerpt, is self-contained), and none is unused
    defined = re.findall(r'<path id="([^"]+)"', html)
    assert defined and len(defined) == len(set(defined))
    seen: set[str] = set()
    for _, glyphs, container in blocks:
        seen |= set(re.findall(r'<path id="([^"]+)"', glyphs))
        used = set(re.findall(r'xlink:href="#(MJX-[^"]+)"', container))
        assert used <= seen, used - seen
    assert seen == set(re.findall(r'xlink:href="#(MJX-[^"]+)"', html))
    # no TeX left in the page outside the assistive MathML, no error, no unresolved reference
    visible = re.sub(r"<mjx-assistive-mml.*?</mjx-assistive-mml>", "", html, flags=re.S)
    for raw in ("\\(", "\\[", "\\begin", "\\frac", "$"):
        assert raw not in unescape(re.sub(r"<[^>]+>", "", visible)), raw
    assert "merror" not in html and "???" not in html and 'mathcolor="red"' not in html
    # the SVG is hidden from screen readers, which read the MathML instead
    assert all('aria-hidden="true"' in re.search(r"<svg[^>]*>", block[2]).group(0) for block in blocks)
    assert len(assistive(html)) == 8
    assert "<mi>x</mi><mo>&lt;</mo><mi>y</mi>" in assistive(html)[0]
    assert 'mathvariant="bold-italic"' in html       # \boldsymbol b
    assert 'mathvariant="script"' in html            # \mathscr L


def test_ams_numbering_and_eqref_links(tmp_path):
    html = render(ARTICLE, tmp_path)
    mml = assistive(html)
    # display formulas in order: aligned (unnumbered), eq:first (1), \tag{7}, eq:later (2)
    assert [labels(m) for m in mml if 'display="block"' in m] == [[], ["(1)"], ["(7)"], ["(2)"]]
    # each \eqref shows its equation's number and links to the anchor MathJax puts on that equation
    refs = re.findall(r'<a href="#([^"]+)"><g data-mml-node="mrow" class=" MathJax_ref"', html)
    assert refs == ["mjx-eqn%3Aeq%3Alater", "mjx-eqn%3Aeq%3Afirst", "mjx-eqn%3Aeq%3Alater"]
    shown = re.findall(r'<mrow href="#[^"]+" class="MathJax_ref"><mtext>([^<]*)</mtext>', html)
    assert shown == ["(2)", "(1)", "(2)"]   # forward reference resolved too
    for ref in set(refs):
        anchor = ref.replace("%3A", ":")
        assert html.count(f'id="{anchor}"') == 1, anchor
    # the anchor sits in the labelled equation's own formula
    blocks = [b[2] for b in CONTAINER.findall(html)]
    assert 'id="mjx-eqn:eq:first"' in blocks[3] and r"\label" not in blocks[3]
    assert 'id="mjx-eqn:eq:later"' in blocks[5]


def test_pages_are_independent(tmp_path):
    """Numbering restarts and \\newcommand does not leak: each page is its own MathJax document."""
    first = render(r"""$$\newcommand{\R}{\mathbb{R}} \R$$

\begin{equation} a \end{equation}
""", tmp_path)
    assert [labels(m) for m in assistive(first)] == [[], ["(1)"]]
    second = render("\\begin{equation} b \\end{equation}\n", tmp_path)
    assert [labels(m) for m in assistive(second)] == [["(1)"]]
    with pytest.raises(MathRenderError, match=r"Undefined control sequence \\R"):
        render("$$\\R$$\n", tmp_path)


def test_output_does_not_depend_on_other_pages(tmp_path):
    """The same page typeset alone or after other pages (same node process) gives the same bytes."""
    alone = render(ARTICLE, tmp_path / "a")
    render("$$\\newcommand{\\b}{X}$$\n\n\\begin{equation}\\label{eq:first} z \\end{equation}\n", tmp_path / "b")
    assert render(ARTICLE, tmp_path / "c") == alone


def test_bad_tex_names_file_line_and_formula(tmp_path):
    source = tmp_path / "post.md"
    source.write_text("# Title\n\nGood $a+b$.\n\nText\n\nBad $\\frac{1}{2} + \\nosuchmacro$ here.\n\n"
                      "$$\n\\left( x\n$$\n\nAnd $\\eqref{missing}$.\n", encoding="utf-8")
    with pytest.raises(MathRenderError) as info:
        render(source.read_text(encoding="utf-8"), tmp_path / "cache", source_path=str(source))
    problems = info.value.problems
    assert [(p[0], p[1]) for p in problems] == [(str(source), 7), (str(source), 10), (str(source), 13)]
    assert problems[0][2] == r"\frac{1}{2} + \nosuchmacro" and "nosuchmacro" in problems[0][3]
    assert problems[1][2] == r"\left( x" and "\\right" in problems[1][3]
    assert problems[2][2] == r"\eqref{missing}" and "unresolved reference" in problems[2][3]
    message = str(info.value)
    assert f"{source}:7: MathJax cannot typeset" in message and f"{source}:13:" in message
    # failures are never cached
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_file_found_under_mkdocs(tmp_path):
    """Under MkDocs the page's file is known to its 'relpath' tree processor: errors name it."""
    source = tmp_path / "docs" / "p.md"
    source.parent.mkdir()
    source.write_text("---\ntitle: t\n---\n\nx $\\bad$\n", encoding="utf-8")

    class File:
        abs_src_path = str(source)

    class RelPath(Treeprocessor):
        file = File()

        def run(self, root):
            return root

    md = markdown.Markdown(extensions=["pymdownx.arithmatex", "spaces_build.mathrender"],
                           extension_configs={"pymdownx.arithmatex": {"generic": True},
                                              "spaces_build.mathrender": {"cache_dir": str(tmp_path)}})
    md.treeprocessors.register(RelPath(md), "relpath", 0)
    with pytest.raises(MathRenderError) as info:
        md.convert("x $\\bad$\n")   # MkDocs converts the text below the front matter
    assert info.value.problems[0][:2] == (os.path.relpath(source), 5)


def test_cache_hit_needs_no_mathjax(tmp_path, monkeypatch):
    cold = render(ARTICLE, tmp_path)
    entries = list(tmp_path.rglob("*.json"))
    assert len(entries) == 1 and entries[0].parent.name == entries[0].stem[:2]
    # a new build (empty memory) finds the page on disk without starting node
    mr_extension._caches.clear()

    def no_node(options):
        raise AssertionError("MathJax was asked for a page the cache holds")

    monkeypatch.setattr(mr_extension, "shared_worker", no_node)
    assert render(ARTICLE, tmp_path) == cold
    # another formula, another order, other macros: other keys (and node is needed again)
    for text, config in ((ARTICLE.replace("x<y", "x>y"), {}),
                         ("$b$ $a$\n", {}), ("$a$ $b$\n", {}),
                         (ARTICLE, {"macros": {"RR": "\\mathbb{R}"}})):
        with pytest.raises(AssertionError, match="cache holds"):
            render(text, tmp_path, **config)


def test_arithmatex_default_settings(tmp_path):
    """As documented: extensions=["pymdownx.arithmatex", "spaces_build.mathrender"], nothing else."""
    html = markdown.markdown("a $x$ b\n\n$$\ny\n$$\n", extensions=["pymdownx.arithmatex", "spaces_build.mathrender"],
                             extension_configs={"spaces_build.mathrender": {"cache_dir": str(tmp_path)}})
    assert len(CONTAINER.findall(html)) == 2 and "<script" not in html and "MathJax_Preview" not in html


def test_macros_option(tmp_path):
    html = render("$\\RR^n$\n", tmp_path, macros={"RR": "\\mathbb{R}"})
    assert "<mi mathvariant=\"double-struck\">R</mi>" in html


def test_served_stylesheet_is_mathjax_own():
    """docs/stylesheets/mathjax.css is MathJax's stylesheet for this output, as MathJax writes it."""
    served = (ROOT / "docs" / "stylesheets" / "mathjax.css").read_text(encoding="utf-8")
    assert served.split("*/", 1)[1].strip() == shared_worker({}).stylesheet().strip()
