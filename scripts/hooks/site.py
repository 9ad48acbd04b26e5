"""MkDocs hook of the archive's site: allow-lists, vendored MathJax, credit and series boxes, ``<eos>``.

Registered under ``hooks:`` in mkdocs.yml. What it does, event by event:

- ``on_config``: feeds ``taxonomy.yml`` (the one allow-list of categories and tags) to Material's own
  checks (blog ``categories_allowed``, tags ``tags_allowed``), and adds the Markdown extension
  :class:`PseudoTagExtension`, which keeps ``<eos>``-like tokens of the prose visible (Python-Markdown
  would take them for HTML tags and drop them). Added here rather than in mkdocs.yml so that the blog
  plugin's excerpt renderer, which reuses ``config.markdown_extensions``, gets it too.
- ``on_files``: serves MathJax 3 from the site itself: the files come from the pinned PyPI package
  ``django-static-mathjax`` (installed by ``pip install -e ".[dev]"``) and are added as generated
  files under ``assets/vendor/mathjax/``; nothing is copied into ``docs/``. Also reads the front
  matter of every post once, for the series boxes.
- ``on_page_content``: on every post page, inserts below the title the credit (原文作者 苏剑林,
  科学空间, link to the original, CC BY-NC-SA) and, for a post of a series, links to the other parts
  present in the archive.
"""
from __future__ import annotations

import html
import importlib.util
import logging
import re
from pathlib import Path

import yaml
from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url
from mkdocs.utils.meta import get_data

log = logging.getLogger("mkdocs.hooks.site")

TAXONOMY = "taxonomy.yml"
POSTS_DIR = "posts/"
MATHJAX_DIR = "assets/vendor/mathjax"
# the one MathJax bundle the pages load (every TeX extension included: nothing is autoloaded later,
# so \boldsymbol & co. are defined on the first typeset) and the CHTML fonts it asks for
MATHJAX_FILES = ("tex-chtml-full.js",)
MATHJAX_FONTS = "output/chtml/fonts/woff-v2"
SITE_HOME = "https://kexue.fm/"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/deed.zh-hans"

_posts: dict[str, dict] = {}   # src_uri -> front matter
_post_files: dict[str, File] = {}


# --------------------------------------------------------------------------------------------------
# allow-lists


def load_taxonomy(config_dir: Path) -> dict[str, list[str]]:
    path = config_dir / TAXONOMY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise PluginError(f"site hook: the allow-list file {path} is missing") from e
    for key in ("categories", "tags"):
        values = data.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise PluginError(f"site hook: '{key}' in {path} must be a list of strings")
        if len(set(values)) != len(values):
            raise PluginError(f"site hook: '{key}' in {path} lists a name twice")
    return data


@event_priority(100)  # before the blog and tags plugins read their settings
def on_config(config):
    from material.plugins.tags.structure.tag import Tag

    taxonomy = load_taxonomy(Path(config.config_file_path).parent)
    for name, plugin in config.plugins.items():
        if name.endswith("/blog") or name == "blog":
            plugin.config.categories_allowed = list(taxonomy["categories"])
        elif name.endswith("/tags") or name == "tags":
            plugin.config.tags_allowed = {Tag(t) for t in taxonomy["tags"]}
    if not any(isinstance(e, PseudoTagExtension) for e in config.markdown_extensions):
        config.markdown_extensions.append(PseudoTagExtension())
    return config


# --------------------------------------------------------------------------------------------------
# MathJax served from the site


def mathjax_root() -> Path:
    """The ``es5`` folder of MathJax 3 inside the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise PluginError('site hook: MathJax is not installed; run pip install -e ".[dev]" '
                          "(package django-static-mathjax)")
    root = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if not (root / MATHJAX_FILES[0]).is_file():
        raise PluginError(f"site hook: {root / MATHJAX_FILES[0]} not found "
                          "(is the right django-static-mathjax installed?)")
    return root


def on_files(files: Files, config) -> Files:
    root = mathjax_root()
    wanted = [(name, root / name) for name in MATHJAX_FILES]
    wanted += [(f"{MATHJAX_FONTS}/{p.name}", p) for p in sorted((root / MATHJAX_FONTS).glob("*.woff"))]
    wanted.append(("LICENSE", root.parent / "LICENSE"))
    for name, path in wanted:
        uri = f"{MATHJAX_DIR}/{name}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))

    _posts.clear()
    _post_files.clear()
    for file in files.documentation_pages():
        if file.src_uri.startswith(POSTS_DIR):
            _, meta = get_data(file.content_string)
            _posts[file.src_uri] = meta
            _post_files[file.src_uri] = file
    return files


# --------------------------------------------------------------------------------------------------
# credit and series on post pages


def credit_html(meta: dict) -> str:
    source = html.escape(str(meta.get("source") or SITE_HOME))
    if meta.get("source_unknown"):
        original = (f'原文地址未知（本存档未能找到这篇文章在原站的网址），'
                    f'请到<a href="{SITE_HOME}">科学空间首页</a>查找')
    else:
        original = f'原文：<a href="{source}">{source}</a>'
    return (
        '<div class="admonition quote spaces-credit" data-search-exclude>\n'
        '<p class="admonition-title">原文与许可</p>\n'
        f'<p>原文作者 <strong>苏剑林</strong>，发表于<a href="{SITE_HOME}">科学空间</a>。{original}。</p>\n'
        f'<p>本页摘录原文，依原站声明按 <a href="{LICENSE_URL}" rel="license">CC BY-NC-SA</a>'
        '（署名-非商业用途-保持一致）协议转载，正文与公式和原文一致；'
        '文末的配套代码（如有）为本存档所加。</p>\n'
        '</div>\n'
    )


def series_html(page) -> str:
    name = page.meta.get("series")
    if not name:
        return ""
    parts = sorted(((str(m.get("date")), uri, m) for uri, m in _posts.items() if m.get("series") == name))
    items = []
    for _, uri, meta in parts:
        title = html.escape(str(meta.get("title", uri)))
        if uri == page.file.src_uri:
            items.append(f'<li><strong>{title}</strong>（本文）</li>')
        else:
            href = get_relative_url(_post_files[uri].url, page.url)
            items.append(f'<li><a href="{html.escape(href)}">{title}</a></li>')
    note = ("" if len(parts) > 1 else
            "<p>本存档只收录了这个系列中的这一篇，其余各篇请到科学空间阅读。</p>\n")
    return (
        '<div class="admonition abstract spaces-series" data-search-exclude>\n'
        f'<p class="admonition-title">系列：{html.escape(str(name))}</p>\n'
        f'{note}<ol>\n' + "\n".join(items) + "\n</ol>\n</div>\n"
    )


def on_page_content(content: str, page, config, files) -> str:
    if not page.file.src_uri.startswith(POSTS_DIR):
        return content
    boxes = credit_html(page.meta) + series_html(page)
    end = content.find("</h1>")
    if end < 0:
        return boxes + content
    end += len("</h1>")
    return content[:end] + "\n" + boxes + content[end:]


# --------------------------------------------------------------------------------------------------
# <eos> and other angle-bracket words of the prose

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
