"""The Python-Markdown extension: arithmatex's formulas become MathJax's own SVG output.

``pymdownx.arithmatex`` (put in its ``generic`` mode by this extension) writes every formula as ``<span class="arithmatex">\\(…\\)
</span>`` or ``<div class="arithmatex">\\[…\\]</div>``. After the page is serialised, a postprocessor
collects them all, has MathJax typeset them as one document (see worker.js) or finds them in the
cache, and puts the output inside the same elements. MathJax defines each glyph once per page
(``fontCache: "global"``); each formula's element also holds a hidden ``<svg>`` with the glyphs that
formula is the first to ``<use>``, so a leading part of the page (a blog excerpt) is self-contained.
The element keeps the TeX it was typeset from in ``data-tex`` (with its delimiters, as arithmatex
wrote it): never shown, it lets a test compare the page's formulas with the original text.

A formula MathJax cannot typeset (TeX error, undefined macro, reference to an unknown label) raises
:class:`MathRenderError` naming the Markdown file, the line and the formula; under MkDocs it is a
``BuildError``, so the build stops with that message.
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

from markdown import Extension
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor

from .cache import RenderCache, Rendered, cache_key
from .worker_client import renderer_fingerprint, shared_worker

try:  # under MkDocs, a BuildError ends the build with its message and no traceback
    from mkdocs.exceptions import BuildError as _ErrorBase
except ImportError:  # pragma: no cover - plain Python-Markdown, no MkDocs installed
    _ErrorBase = Exception

# what pymdownx.arithmatex (generic mode) writes; the TeX inside is HTML-escaped, so no "<" in it
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)
DELIMITERS = (("\\(", "\\)"), ("\\[", "\\]"))
# MathJax's glyph definitions (fontCache "global") and the formulas' references to them
GLYPH = re.compile(r'<path id="([^"]+)" d="[^"]*"></path>')
USE = re.compile(r'xlink:href="#([^"]+)"')

_caches: dict[str, RenderCache] = {}


class MathRenderError(_ErrorBase):
    """Formulas MathJax cannot typeset; ``problems``: (file, line, formula, message) tuples."""

    def __init__(self, problems: list[tuple[str, int | None, str, str]]):
        self.problems = problems
        lines = [f"{file}:{line if line is not None else '?'}: MathJax cannot typeset "
                 f"{formula}  —  {message}" for file, line, formula, message in problems]
        super().__init__("\n".join(lines))


def shared_cache(directory: str) -> RenderCache:
    key = str(Path(directory).resolve()) if directory else ""
    if key not in _caches:
        _caches[key] = RenderCache(key or None)
    return _caches[key]


def tex_of(inner_html: str) -> str:
    """The TeX of an arithmatex element, without its \\( \\) or \\[ \\] delimiters."""
    tex = html.unescape(inner_html).strip()
    for start, end in DELIMITERS:
        if tex.startswith(start) and tex.endswith(end):
            return tex[len(start):-len(end)].strip()
    return tex


def locate(source: str, formulas: list[str]) -> list[int | None]:
    """1-based line of each formula in ``source`` (searched in order; None where not found)."""
    lines, cursor = [], 0
    for tex in formulas:
        probes = [tex] + [line.strip() for line in tex.splitlines() if line.strip()][:1]
        at = -1
        for probe in probes:
            at = source.find(probe, cursor)
            if at < 0:
                at = source.find(probe)
            if at >= 0:
                break
        if at < 0:
            lines.append(None)
            continue
        cursor = at + 1
        lines.append(source.count("\n", 0, at) + 1)
    return lines


def glyphs_by_formula(rendered: Rendered) -> list[str]:
    """For each formula, a hidden ``<svg>`` defining the glyphs it is the first of the page to use
    (or ""). Any leading part of the page (a blog excerpt is one) thus holds the glyphs of its own
    formulas and no others, and each glyph is defined once per page."""
    paths = {m.group(1): m.group(0) for m in GLYPH.finditer(rendered.defs)}
    seen: set[str] = set()
    out = []
    for item in rendered.items:
        new = [g for g in dict.fromkeys(USE.findall(item)) if g not in seen and g in paths]
        seen.update(new)
        out.append(f'<svg class="mjx-glyphs" style="display: none;" aria-hidden="true"><defs>'
                   f'{"".join(paths[g] for g in new)}</defs></svg>' if new else "")
    return out


class _SourceCapture(Preprocessor):
    """Keeps the Markdown as given (for line numbers in error messages)."""

    def __init__(self, md, owner: "MathRenderExtension"):
        super().__init__(md)
        self.owner = owner

    def run(self, lines):
        self.owner.source = "\n".join(lines)
        # arithmatex must write its generic form (\( \) and \[ \] in .arithmatex elements), the form
        # MathJax reads: switched on here, whatever its own setting (its processors read it per match)
        for name, registry in (("arithmatex-inline", self.md.inlinePatterns),
                               ("arithmatex-block", self.md.parser.blockprocessors)):
            if name in registry:
                registry[name].generic = True
        return lines


class _RenderMath(Postprocessor):
    def __init__(self, md, owner: "MathRenderExtension"):
        super().__init__(md)
        self.owner = owner

    def run(self, text: str) -> str:
        found = list(ARITHMATEX.finditer(text))
        if not found:
            return text
        items = [{"tag": m.group(1), "html": m.group(2)} for m in found]
        rendered = self.owner.render(items)
        out, last = [], 0
        for m, glyphs, output in zip(found, glyphs_by_formula(rendered), rendered.items):
            out.append(text[last:m.start()])
            tex = m.group(2).replace('"', "&quot;")   # the TeX as arithmatex wrote it (escaped)
            out.append(f'<{m.group(1)} class="arithmatex" data-tex="{tex}">{glyphs}{output}</{m.group(1)}>')
            last = m.end()
        out.append(text[last:])
        return "".join(out)


class MathRenderExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {
            "cache_dir": [".cache/mathrender",
                          "folder of the rendered-formula cache ('' for no cache on disk)"],
            "macros": [{}, "TeX macros defined for every page, as MathJax's tex.macros"],
            "source_path": ["", "the Markdown file's name in error messages (found by itself "
                                "under MkDocs)"],
        }
        super().__init__(**kwargs)
        self.source = ""
        self.md = None

    def extendMarkdown(self, md):  # noqa: N802 - Python-Markdown's name
        self.md = md
        md.registerExtension(self)
        md.preprocessors.register(_SourceCapture(md, self), "spaces_mathrender_source", 1000)
        # after every other postprocessor (raw HTML restored): the page's final HTML
        md.postprocessors.register(_RenderMath(md, self), "spaces_mathrender", 1)

    def reset(self):
        self.source = ""

    def options(self) -> dict:
        macros = self.getConfig("macros") or {}
        return {"tex": {"macros": macros}} if macros else {}

    def render(self, items: list[dict]) -> Rendered:
        options = self.options()
        cache = shared_cache(self.getConfig("cache_dir"))
        key = cache_key(items, options, renderer_fingerprint())
        found = cache.get(key)
        if found is not None and len(found.items) == len(items):
            return found
        answer = shared_worker(options).typeset(items)
        if answer["errors"]:
            self.fail(items, answer["errors"])
        if len(answer["items"]) != len(items) or any(x is None for x in answer["items"]):
            self.fail(items, [{"index": -1, "message": "MathJax returned "
                               f"{len(answer['items'])} formulas for {len(items)}"}])
        result = Rendered(items=tuple(answer["items"]), defs=answer["defs"])
        cache.put(key, result)
        return result

    def source_file(self) -> tuple[str, str]:
        """(name for messages, text to search for line numbers)."""
        configured = self.getConfig("source_path")
        if configured:
            try:
                return configured, Path(configured).read_text(encoding="utf-8")
            except OSError:
                return configured, self.source
        # under MkDocs (pages and blog excerpts): the page's file, known to its relpath processor
        relpath = self.md.treeprocessors["relpath"] if self.md and "relpath" in self.md.treeprocessors else None
        file = getattr(relpath, "file", None)
        path = getattr(file, "abs_src_path", None)
        if path:
            name = os.path.relpath(path)
            try:
                return name, Path(path).read_text(encoding="utf-8-sig")
            except OSError:
                return name, self.source
        return "<markdown>", self.source

    def fail(self, items: list[dict], errors: list[dict]):
        name, source = self.source_file()
        formulas = [tex_of(item["html"]) for item in items]
        lines = locate(source, formulas)
        problems = []
        for error in errors:
            i = error.get("index")
            ok = isinstance(i, int) and 0 <= i < len(items)
            problems.append((name, lines[i] if ok else None, formulas[i] if ok else "",
                             error["message"]))
        raise MathRenderError(problems)


def makeExtension(**kwargs):  # noqa: N802 - Python-Markdown's entry point
    return MathRenderExtension(**kwargs)
