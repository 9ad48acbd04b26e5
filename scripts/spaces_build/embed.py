"""Python-Markdown extension: each snippet's recorded output right after the block that shows its code.

A fenced block whose body is exactly ``--8<-- "snippets/<slug>/<name>.py"`` (pymdownx.snippets
includes the code) is followed by the snippet's ``<div class="snippet-output">``: text, figures, the
environment it ran in. It works with plain Markdown, outside MkDocs::

    markdown.markdown(text, extensions=["pymdownx.superfences", "pymdownx.snippets", "spaces_build.embed"],
                      extension_configs={"spaces_build.embed": {"root": "/path/to/repo"}})

There the outputs come from the cache (``spaces build --execute-only`` fills it; nothing is executed
here) and figures are inlined as ``data:`` URIs; a snippet without a fresh cache entry is an error
naming it. The MkDocs plugin passes its own ``source`` instead: the records of the build and figure
files served beside the page. Any generator that runs Python-Markdown extensions can use it.
"""
from __future__ import annotations

import base64
from pathlib import Path

from markdown import Extension
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor

from . import parsing


class MissingOutput(Exception):
    """A page includes a snippet whose output is not in the cache."""


class CachedOutputs:
    """Outputs read from the cache of the repository at ``root`` (as executed on ``device``)."""

    def __init__(self, root: str | Path = ".", device: str = "cpu"):
        from .cache import Cache, Hasher
        from .engine import environment

        self.root = Path(root).resolve()
        self.cache = Cache(self.root)
        self.hasher = Hasher(self.root)
        self.env = environment(device)

    def output_html(self, rel: str) -> str:
        from .cache import lookup_key
        from .discovery import load_snippet
        from .executor import Record
        from .render import render_output

        snippet = load_snippet(self.root, rel)
        entry = self.cache.load(lookup_key(rel, snippet.sha256, self.env))
        if not self.cache.is_fresh(entry, snippet.sha256, self.env, self.hasher):
            raise MissingOutput(f"{rel}: no up-to-date output in {self.cache.entries} — run "
                                "`spaces build --execute-only` first")
        urls = ["data:image/svg+xml;base64," + base64.b64encode(self.cache.figure_path(sha).read_bytes()).decode()
                for sha in entry.figures]
        return render_output(Record(snippet, "ok", True, entry=entry, seconds=entry.seconds,
                                    peak_memory_mb=entry.peak_memory_mb), urls)


MARK = "<!-- spaces-snippet-output {} -->"


class EmbedPreprocessor(Preprocessor):
    """Puts a marker comment after each snippet block (before pymdownx.snippets replaces the include
    line) and keeps the output's HTML for :class:`EmbedPostprocessor`."""

    def __init__(self, md, extension: "EmbedOutputsExtension"):
        super().__init__(md)
        self.extension = extension

    def run(self, lines: list[str]) -> list[str]:
        self.md.spaces_outputs = outputs = []
        if not any("8<" in line for line in lines):
            return lines
        source = self.extension.source()
        found = []
        for inc in parsing.find_includes("\n".join(lines)):
            html = source.output_html(inc.snippet)
            if html is not None:
                found.append((inc, len(outputs)))
                outputs.append(html)
        lines = list(lines)
        for inc, n in reversed(found):
            lines[inc.close + 1:inc.close + 1] = ["", inc.indent + MARK.format(n), ""]
        return lines


class EmbedPostprocessor(Postprocessor):
    """Replaces each marker (raw HTML, passed through untouched) by the output's HTML."""

    def run(self, text: str) -> str:
        for n, html in enumerate(getattr(self.md, "spaces_outputs", [])):
            text = text.replace(MARK.format(n), html, 1)
        return text


class EmbedOutputsExtension(Extension):
    def __init__(self, source=None, **kwargs):
        """``source``: an object with ``output_html(rel) -> str | None`` (the MkDocs plugin passes
        itself); without it, outputs are read from the cache under ``root``."""
        self.config = {
            "root": [".", "repository root whose .cache/ holds the outputs"],
            "device": ["cpu", "device the outputs were executed on"],
        }
        super().__init__(**kwargs)
        self.given_source = source
        self._cached: CachedOutputs | None = None

    def source(self):
        if self.given_source is not None:
            return self.given_source
        if self._cached is None:
            self._cached = CachedOutputs(self.getConfig("root"), self.getConfig("device"))
        return self._cached

    def extendMarkdown(self, md):
        # before pymdownx.snippets (32), which replaces the include lines with the snippet's code; the
        # marker goes through as raw HTML (Python-Markdown's own placeholders would not survive
        # normalize_whitespace, 30), and is replaced once the raw HTML is back (30 > 25)
        md.preprocessors.register(EmbedPreprocessor(md, self), "spaces_embed_outputs", 33)
        md.postprocessors.register(EmbedPostprocessor(md), "spaces_embed_outputs", 25)


def makeExtension(**kwargs):  # noqa: N802 - Python-Markdown's name
    return EmbedOutputsExtension(**kwargs)
