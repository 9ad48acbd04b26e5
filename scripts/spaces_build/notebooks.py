"""A Jupyter notebook per article: its snippets as code cells with the outputs the build recorded.

Built with nbformat's v4 builders and checked with ``nbformat.validate``; never executed again
(mkdocs-jupyter renders it with ``execute: false``). No MkDocs here.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat import v4

from .render import TIMING_NOTE

if TYPE_CHECKING:
    from .cache import Cache
    from .discovery import Post
    from .executor import Record


def notebook(article: str, post: Post | None, records: list[Record], cache: Cache,
             article_url: str | None) -> str:
    """The notebook's JSON (nbformat 4.5, cell ids stable across builds)."""
    title = post.title if post else article
    intro = [f"# {title}：配套代码\n", "\n",
             "本笔记本由构建自动生成：每个代码单元格是文章中的一段代码，输出是构建时实际运行得到的结果。\n"]
    if article_url:
        intro.append(f"\n文章页面：<{article_url}>\n")
    if post and post.source_url:
        intro.append(f"\n原文：<{post.source_url}>\n")
    intro.append("\n要在本地重新运行，请在仓库根目录安装配套库：`pip install -e .`（代码依赖 `spaces_code`）。")
    cells = [v4.new_markdown_cell(intro)]  # a list of lines, kept as written
    for n, record in enumerate(records, start=1):
        entry = record.entry
        heading = f"`{record.snippet.rel}`"
        if record.snippet.timing_dependent:
            heading += f"\n\n{TIMING_NOTE}"
        cells.append(v4.new_markdown_cell(heading))
        outputs = []
        text = entry.output if entry is not None else ""
        if entry is not None and entry.truncated:
            text += f"\n\n[… 输出过长：共 {entry.output_bytes:,} 字节，已截断 …]\n\n" + entry.output_tail
        if text:
            outputs.append(v4.new_output("stream", name="stdout", text=text))
        if not record.ok:
            outputs.append(v4.new_output("stream", name="stderr", text=record.output))
        for sha in entry.figures if entry is not None else []:
            svg = cache.figure_path(sha).read_text(encoding="utf-8")
            outputs.append(v4.new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"},
                                         metadata={}))
        meta = {"spaces": {"snippet": record.snippet.rel, "timing_dependent": record.snippet.timing_dependent}}
        cells.append(v4.new_code_cell(record.snippet.source.rstrip("\n"), execution_count=n, metadata=meta,
                                      outputs=outputs))
    for i, cell in enumerate(cells):  # stable ids: the same notebook on every build
        cell["id"] = f"{article[:40] or 'cell'}-{i}"
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": platform.python_version()},
    })
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


_SELF_SHA: str | None = None


def notebook_fingerprint(article: str, post: Post | None, records: list[Record], url: str | None) -> str:
    """Everything :func:`notebook` shows, cheaply: equal fingerprints mean equal notebooks."""
    global _SELF_SHA
    if _SELF_SHA is None:  # the code that writes notebooks is part of what they show
        _SELF_SHA = hashlib.sha256(Path(__file__).read_bytes() + nbformat.__version__.encode()).hexdigest()
    shown = [article, post and [post.title, post.source_url], url, platform.python_version(), _SELF_SHA]
    for r in records:
        # The entry's own outputs, not only its key: a snippet run again under the same key (a timing
        # snippet, after its entry was pruned or came from another shard) shows new text and figures.
        e = r.entry
        outputs = [e.key, e.output, e.truncated, e.output_bytes, e.output_tail, e.figures] if e else None
        shown.append([r.snippet.rel, r.snippet.sha256, r.snippet.timing_dependent, r.status, outputs, r.output])
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()
