"""The adapter between this build and mkdocs-jupyter, which renders each article's notebook page.

mkdocs-jupyter stays as it is (options in mkdocs.yml: ``execute: false``, ``include_source: true``);
this module adjusts what it produces, in three documented ways, each tested in
``tests/test_spaces_build_jupyter.py``:

- :func:`drop_torn_cache`: mkdocs-jupyter writes its render cache non-atomically; after a build killed
  mid-write, the next one would crash on the torn JSON, so such entries are removed first;
- :func:`slim_page`: the ~575 kB stylesheet it inlines into every notebook page becomes one shared
  file, each figure inlined as a base64 ``data:`` URI links to the same SVG file the article page shows,
  and the scripts it adds that this site does not use (an empty ``<script src="">``, a MathJax 2
  configuration, a Mermaid loader from a CDN) go: the site's pages request nothing from other hosts;
- :func:`align_anchors`: nbconvert derives heading ids from ASCII letters only (a Chinese heading gets
  ``id=""``), while the table of contents links to Python-Markdown's ids: headings get those ids;
- :func:`share_templates`: nbconvert's Jinja templates are compiled once per process, not once per
  notebook (the same HTML, byte for byte).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from pathlib import Path

from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.plugins.spaces")


def drop_torn_cache(config) -> None:
    """mkdocs-jupyter writes its render cache non-atomically; after a build killed mid-write the
    next build would crash on the torn JSON. Each entry ends with its ``"title": ...}`` key, which
    cannot occur unescaped inside the content string: without it in the tail, the entry goes."""
    plugin = config.plugins.get("mkdocs-jupyter")
    if plugin is None or not plugin.config.get("cache"):
        return
    cache_dir = Path(plugin.config["cache_dir"])
    if not cache_dir.is_dir():
        return
    for path in cache_dir.glob("*.json"):
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                whole = b'"title": ' in fh.read()
        except OSError:
            continue
        if not whole:
            log.info(f"Removing a torn mkdocs-jupyter cache entry: {path}")
            path.unlink(missing_ok=True)


class _TemplateMemory:
    """A Jinja bytecode cache in memory, shared by every nbconvert exporter of this process."""

    def __init__(self):
        import jinja2

        class Memory(jinja2.BytecodeCache):
            def __init__(self):
                self.code: dict[str, bytes] = {}

            def load_bytecode(self, bucket) -> None:
                data = self.code.get(bucket.key)
                if data is not None:
                    bucket.bytecode_from_string(data)  # Jinja checks the source's checksum: stale code is dropped

            def dump_bytecode(self, bucket) -> None:
                self.code[bucket.key] = bucket.bytecode_to_string()

        self.cache = Memory()


def share_templates() -> None:
    """Compile nbconvert's templates once per process instead of once per notebook.

    mkdocs-jupyter makes a new exporter, hence a new Jinja environment, for every notebook it converts
    (twice: HTML, and Markdown for the table of contents), and compiling the templates again (~600
    compilations for 38 notebooks) was over half of a cold build's notebook conversion. Jinja's own
    bytecode cache, held in memory, gives the same HTML byte for byte (issue 8 did this in the old
    build hook; the engine package had lost it). Without nbconvert (or if its internals move),
    nothing is changed.
    """
    try:
        from nbconvert.exporters.templateexporter import TemplateExporter
    except ImportError:
        return
    create = TemplateExporter.__dict__.get("_create_environment")
    if create is None or getattr(create, "spaces_shared", False):
        return
    memory = _TemplateMemory().cache

    def _create_environment(self):
        environment = create(self)
        environment.bytecode_cache = memory
        return environment

    _create_environment.spaces_shared = True
    TemplateExporter._create_environment = _create_environment


def _blocks(html: str, opening: str, closing: str):
    """(start, end) of each ``opening ... closing`` block, found with str.find (pages are ~1 MB)."""
    pos = 0
    while (start := html.find(opening, pos)) >= 0:
        end = html.find(closing, start + len(opening))
        if end < 0:
            return
        end += len(closing)
        yield start, end
        pos = end


def _cut(html: str, cuts: list) -> list:
    """``html`` as pieces, each ``(start, end, replacement)`` of ``cuts`` replaced (overlaps: the first wins)."""
    parts, pos = [], 0
    for start, end, replacement in sorted(cuts, key=lambda cut: cut[:2]):
        if start < pos:
            continue
        parts += [html[pos:start], replacement]
        pos = end
    parts.append(html[pos:])
    return parts


class _Sheet(str):
    """A piece of a slimmed head: the site path of a shared stylesheet, linked relative to each page."""


_WRAPPER = '<div class="jupyter-wrapper">'  # where mkdocs-jupyter's notebook body starts
_HEAD_MEMO: list = []  # [(head, pieces, stylesheets)]: the head mkdocs-jupyter writes is the same on every page


def _slim_head(head: str) -> tuple[list, dict[str, str]]:
    if _HEAD_MEMO and _HEAD_MEMO[0][0] == head:  # ~600 kB compared, not parsed again
        return _HEAD_MEMO[0][1], _HEAD_MEMO[0][2]
    cuts, sheets = [], {}
    for start, end in _blocks(head, '<style type="text/css">', "</style>"):
        css = head[start + len('<style type="text/css">'):end - len("</style>")]
        if len(css) >= 20_000:
            uri = f"assets/stylesheets/jupyter-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
            sheets[uri] = css
            cuts.append((start, end, _Sheet(uri)))
    for start, end in _blocks(head, '<script type="text/x-mathjax-config">', "</script>"):
        cuts.append((start, end, ""))
    for start, end in _blocks(head, '<script type="module">', "</script>"):
        if "cdnjs.cloudflare.com" in head[start:end] and "mermaid" in head[start:end]:
            cuts.append((start, end, ""))
    for start, end in _blocks(head, '<script src="">', "</script>"):
        cuts.append((start, end, ""))
    pieces = _cut(head, cuts)
    _HEAD_MEMO[:] = [(head, pieces, sheets)]
    return pieces, sheets


def slim_page(html: str, page, stylesheets: dict[str, str], figures: dict[str, str] | None = None) -> str:
    """Trim what mkdocs-jupyter puts into every notebook page (``stylesheets`` collects site path -> CSS).

    - its ~575 kB stylesheet, inlined in each page, becomes one shared file (written in on_post_build);
    - ``<script src="">`` and the MathJax 2 configuration (the site loads MathJax 3 itself; the
      notebooks hold no math) go, and so does the Mermaid loader that imports from a CDN (no
      notebook holds a diagram): pages of this site make no requests to other hosts;
    - a figure inlined as ``src="data:image/svg+xml;base64,..."`` whose SVG is one of ``figures``
      (sha256 of the SVG's bytes -> its file's site path) links to that file instead, the one the
      article page shows: the 38 notebook pages went from 9.37 MB to 3.13 MB, and a reader who has
      read the article has the figures cached already. An SVG not in ``figures`` stays inlined.

    The stylesheet and the scripts are in the part before the notebook's body (``_WRAPPER``), the
    same ~600 kB on every page: it is slimmed once per process and compared, not searched, afterwards.
    """
    split = html.find(_WRAPPER)
    head, body = (html[:split], html[split:]) if split >= 0 else (html, "")
    pieces, sheets = _slim_head(head)
    stylesheets.update(sheets)
    out = "".join(f'<link rel="stylesheet" href="{get_relative_url(piece, page.url)}">'
                  if isinstance(piece, _Sheet) else piece for piece in pieces) + body
    if figures:
        cuts = []
        for start, end in _blocks(out, _SVG_DATA, '"'):
            try:
                data = base64.b64decode(out[start + len(_SVG_DATA):end - 1], validate=True)
            except (binascii.Error, ValueError):
                continue
            uri = figures.get(hashlib.sha256(data).hexdigest())
            if uri is not None:
                cuts.append((start, end, f'src="{get_relative_url(uri, page.url)}"'))
        out = "".join(_cut(out, cuts))
    return align_anchors(out, page)


_SVG_DATA = 'src="data:image/svg+xml;base64,'


_NB_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link" href="#[^"]*">')


def align_anchors(html: str, page) -> str:
    """Give each notebook heading the id that the page's table of contents links to.

    nbconvert derives heading ids from ASCII letters only (a Chinese title gets ``id=""``), while
    mkdocs-jupyter builds the table of contents, and Material its "skip to content" link, with
    Python-Markdown's ids (``_1``): those links pointed nowhere. Headings and entries come in the
    same order; when their counts differ, nothing is changed.
    """
    ids: list[str] = []

    def walk(items) -> None:
        for item in items:
            ids.append(item.id)
            walk(item.children)

    walk(getattr(page, "toc", None) or [])
    heads = list(_NB_HEADING.finditer(html))
    if not ids or len(heads) != len(ids):
        return html
    parts, pos = [], 0
    for m, anchor in zip(heads, ids):
        parts += [html[pos:m.start()],
                  f'<h{m.group(1)} id="{anchor}">{m.group(3)}<a class="anchor-link" href="#{anchor}">']
        pos = m.end()
    parts.append(html[pos:])
    return "".join(parts)
