"""Python-Markdown extension: ``<eos>``-like words of the prose stay visible.

Python-Markdown takes ``<eos>``, ``<unk>``, ``<mask>`` ... for HTML tags and drops them. This
extension escapes every ``<word>`` that is not an HTML element, outside code, formulas and comments.
Works with plain ``markdown.markdown(text, extensions=["spaces_build.pseudotags"])``.
"""
from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor

HTML_ELEMENTS = frozenset("""
a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption
cite code col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset
figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins
kbd label legend li link main map mark math menu meta meter nav noscript object ol optgroup option
output p param picture pre progress q rp rt ruby s samp script search section select slot small
source span strong style sub summary sup svg table tbody td template textarea tfoot th thead time
title tr track u ul var video wbr center font big tt strike
""".split())

# what must not be touched: fenced-code placeholders are already stashed by superfences; inline code,
# formulas, HTML comments and autolinks are skipped here
_PROTECTED = re.compile(
    r"(?P<code>(`+).+?\2)"
    r"|(?P<math>\$\$.+?\$\$|\$[^$\n]+?\$|\\begin\{(?P<env>[a-zA-Z*]+)\}.+?\\end\{(?P=env)\}"
    r"|\\\[.+?\\\]|\\\(.+?\\\))"
    r"|(?P<comment><!--.*?-->)",
    re.S,
)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]*)((?:\s[^<>]*)?)(/?)>")


def escape_pseudo_tags(text: str) -> str:
    """Escape ``<word>`` tokens that are not HTML elements, outside code, math and comments."""

    def fix(piece: str) -> str:
        def repl(m: re.Match) -> str:
            if m.group(2).lower() in HTML_ELEMENTS:
                return m.group(0)
            return "&lt;" + m.group(0)[1:-1] + "&gt;"
        return _TAG.sub(repl, piece)

    out, pos = [], 0
    for m in _PROTECTED.finditer(text):
        out.append(fix(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fix(text[pos:]))
    return "".join(out)


class PseudoTagPreprocessor(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        block: list[str] = []

        def flush():
            if block:
                out.extend(escape_pseudo_tags("\n".join(block)).split("\n"))
                block.clear()

        for line in lines:
            # indented code blocks stay as written
            if line.startswith(("    ", "\t")) and (not block or not block[-1].strip()):
                flush()
                out.append(line)
            elif not line.strip():
                flush()
                out.append(line)
            else:
                block.append(line)
        flush()
        return out


class PseudoTagExtension(Extension):
    """Python-Markdown extension: ``<eos>`` in prose renders as text instead of vanishing."""

    def extendMarkdown(self, md):
        # after superfences has stashed fenced code (25), before raw HTML is parsed (20)
        md.preprocessors.register(PseudoTagPreprocessor(md), "spaces_pseudo_tags", 24)


def makeExtension(**kwargs):  # noqa: N802 - Python-Markdown's name
    return PseudoTagExtension(**kwargs)
