"""Rendering of the build's records: pure functions (no I/O), no MkDocs.

The output ``<div class="snippet-output">`` shown after a snippet's code, the executions table and
``executions.json``, and the ``code/<module>.md`` pages. Notebooks are in ``spaces_build.notebooks``.
"""
from __future__ import annotations

import dataclasses
import html
import json
import re
from typing import TYPE_CHECKING

from .cache import CacheEntry

if TYPE_CHECKING:  # only for annotations
    from .discovery import Post
    from .engine import BuildState
    from .executor import Record

TIMING_NOTE = "注意：这段代码测量的是运行时间，结果取决于机器和负载，每次构建都会不同（不参与可重复性比较）。"


def environment_line(entry: CacheEntry) -> str:
    versions = entry.versions or {}
    device = entry.device or "cpu"
    if entry.device_name:
        device += f" ({entry.device_name})"
    parts = [f"设备 {device}", f"Python {versions.get('python')}"]
    if versions.get("torch"):
        parts.append(f"PyTorch {versions['torch']}")
    if versions.get("numpy"):
        parts.append(f"NumPy {versions['numpy']}")
    return "运行结果 · " + " · ".join(parts)


def figure_src_uri(rel: str, index: int) -> str:
    """Where figure ``index`` (1-based) of a snippet lives in the site."""
    stem = rel.split("/", 1)[1][:-3]
    return f"snippet-outputs/{stem}-{index}.svg"


def output_text(entry: CacheEntry) -> str:
    """What a snippet printed, with a note in the middle where it was truncated."""
    text = entry.output
    if entry.truncated:
        omitted = entry.output_bytes - len(text.encode()) - len(entry.output_tail.encode())
        text = (text + f"\n\n[… 输出过长：共 {entry.output_bytes:,} 字节，中间省略约 {max(omitted, 0):,} 字节 …]\n\n"
                + entry.output_tail)
    return text


def render_output(record: Record, figure_urls: list[str]) -> str:
    """The ``<div class="snippet-output">`` shown right after the snippet's code."""
    e = html.escape
    snip = record.snippet
    attrs = f'class="snippet-output" data-snippet="{e(snip.rel)}"'
    if not record.ok:
        kind = "超时" if record.status == "timeout" else "运行失败"
        err = record.error or {}
        where = f"第 {err['line']} 行，" if err.get("line") else ""
        return (f'<div class="snippet-output snippet-failed" data-snippet="{e(snip.rel)}">\n'
                f'<p class="snippet-output-meta">{kind}：{where}{e(err.get("type", ""))}: '
                f'{e(str(err.get("message", "")))}</p>\n'
                f'<pre class="snippet-output-text"><code>{e(record.output, quote=False)}</code></pre>\n</div>')
    entry = record.entry
    if entry.timing_dependent:
        attrs += ' data-timing-dependent="true"'
    parts = [f"<div {attrs}>", f'<p class="snippet-output-meta">{e(environment_line(entry))}</p>']
    if entry.timing_dependent:
        parts.append(f'<p class="snippet-output-note">{e(TIMING_NOTE)}</p>')
    text = output_text(entry)
    if entry.truncated:
        parts.append(f'<p class="snippet-output-note snippet-output-truncated">输出过长（共 '
                     f'{entry.output_bytes:,} 字节），已截断：只显示开头和结尾。</p>')
    if text.strip():
        parts.append(f'<pre class="snippet-output-text"><code>{e(text.rstrip(), quote=False)}</code></pre>')
    for i, url in enumerate(figure_urls, start=1):
        parts.append(f'<figure class="snippet-output-figure"><img src="{e(url)}" '
                     f'alt="{e(snip.rel)} 的输出图 {i}" loading="lazy"></figure>')
    parts.append("</div>")
    return "\n".join(parts)


def executions_json(state: BuildState) -> str:
    rows = []
    for rel in sorted(state.records):
        r = state.records[rel]
        entry = dataclasses.asdict(r.entry) if r.entry is not None else {}
        rows.append({
            "snippet": rel,
            "article": r.snippet.article,
            "pages": r.snippet.pages,
            "status": r.status,
            "cached": r.cached,
            "seconds": r.seconds,
            "peak_memory_mb": r.peak_memory_mb,
            "device": entry.get("device", state.device),
            "device_name": entry.get("device_name"),
            "executed_at": entry.get("executed_at"),
            "versions": entry.get("versions"),
            "timing_dependent": r.snippet.timing_dependent,
            "figures": len(entry.get("figures", [])),
            "output_bytes": entry.get("output_bytes"),
            "truncated": entry.get("truncated", False),
        })
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def render_executions_table(state: BuildState, link_for) -> str:
    """The table of the executions page (like sphinx-gallery's computation times), slowest first.

    ``link_for(record)`` returns the relative URL of the page showing the snippet, or None.
    """
    e = html.escape
    records = sorted(state.records.values(), key=lambda r: (-(r.seconds or 0), r.snippet.rel))
    total = sum(r.seconds or 0 for r in records)
    peak = max((r.peak_memory_mb or 0 for r in records), default=0)
    ok = sum(r.ok for r in records)
    cached = sum(r.cached for r in records)
    status_zh = {"ok": "成功", "failed": "失败", "timeout": "超时"}
    rows = []
    for r in records:
        entry = dataclasses.asdict(r.entry) if r.entry is not None else {}
        url = link_for(r)
        article = e(r.snippet.article or "-")
        if url:
            article = f'<a href="{e(url)}">{article}</a>'
        name = f'<code title="{e(r.snippet.rel)}">{e(r.snippet.rel.rsplit("/", 1)[-1])}</code>'
        if r.snippet.timing_dependent:
            name += ' <span class="snippet-timing-flag" title="输出依赖运行时间">计时</span>'
        when = (entry.get("executed_at") or "-").replace("T", " ").replace("+00:00", "")
        rows.append(
            f"<tr><td>{article}</td><td>{name}</td>"
            f'<td class="status-{r.status}">{status_zh[r.status]}</td>'
            f"<td>{'是' if r.cached else '否'}</td>"
            f'<td class="num">{(r.seconds or 0):.2f}</td>'
            f'<td class="num">{(r.peak_memory_mb or 0):.0f}</td>'
            f"<td>{e(entry.get('device', state.device))}</td>"
            f'<td class="when">{e(when)}</td></tr>')
    return "\n".join([
        f'<p class="snippet-executions-summary">共 {len(records)} 段代码，{ok} 段成功；'
        f"本次构建运行了 {state.executed} 段，{cached} 段来自缓存。"
        f"全部代码的运行时间合计 {total:.1f} 秒，单段内存峰值最高 {peak:.0f} MB。"
        f"标有“计时”的代码测量运行时间，其输出每次构建都不同。</p>",
        '<div class="snippet-executions"><table>',
        "<thead><tr><th>文章</th><th>代码片段</th><th>状态</th><th>缓存</th><th>耗时 (s)</th>"
        "<th>内存峰值 (MB)</th><th>设备</th><th>运行时间 (UTC)</th></tr></thead>",
        "<tbody>", *rows, "</tbody>",
        f'<tfoot><tr><td>合计</td><td>{len(records)} 段</td><td>{ok} 成功</td><td>{cached} 缓存</td>'
        f'<td class="num">{total:.2f}</td><td class="num">{peak:.0f}</td><td></td><td></td></tr></tfoot>',
        "</table></div>",
    ])


CODE_MARK = "<!-- spaces-code-source -->"


def code_fence(module_rel: str, source: str) -> str:
    """The fenced block that shows a module's source (highlighted once, see ``code_page``)."""
    longest = max((len(m) for m in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([f'{fence}python title="{module_rel}" linenums="1"', source.rstrip("\n"), fence])


def code_page(module_rel: str, source: str, users: list[Post]) -> str:
    """Markdown of the page showing one ``spaces_code`` module and the articles that use it.

    The highlighted source is not in the Markdown: the page holds :data:`CODE_MARK`, which the hook
    replaces with the HTML of :func:`code_fence` rendered once and cached by content (highlighting
    every module's source was most of what a warm build adds to a plain ``mkdocs build``).
    """
    # Out of the search index: a module's names already appear in the snippets on its articles'
    # pages (which are indexed), and highlighted source would double the index and its build time.
    lines = ["---", "search:", "  exclude: true", "---", "", f"# {module_rel}", ""]
    if users:
        lines.append("用到这个模块的文章（它们的代码片段在运行时导入了它）：")
        lines.append("")
        lines += [f"- [{_md_escape(p.title)}](../{'../' * module_rel.count('/', len('spaces_code/'))}"
                  f"{p.src_uri})" for p in users]
    else:
        lines.append("目前没有文章的代码片段导入这个模块。")
    lines += ["", CODE_MARK, ""]
    return "\n".join(lines)


def code_index_page(modules: list[tuple[str, str]], users: dict[str, list[Post]]) -> str:
    lines = ["# 配套代码", "", "`spaces_code` 是本站所有代码片段共用的、经过测试的库；每个模块对应一个主题。", ""]
    for module_rel, page_uri in modules:
        n = len(users.get(module_rel, []))
        lines.append(f"- [{module_rel}]({page_uri[len('code/'):]}) — {n} 篇文章使用")
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\\[\]*_`<>])", r"\\\1", text)
