"""MkDocs plugin ``spaces-site``: allow-lists, credit and series boxes.

Registered by the entry point ``mkdocs.plugins: spaces-site`` and listed under ``plugins:`` in
mkdocs.yml. What it does, event by event:

- ``on_config``: feeds ``taxonomy.yml`` (the one allow-list of categories and tags) to Material's own
  checks (blog ``categories_allowed``, tags ``tags_allowed``). (``<eos>``-like words of the prose are
  kept visible by the Markdown extension ``spaces_build.pseudotags``, listed in mkdocs.yml.)
- ``on_files``: reads the front matter of every post once, for the series boxes. (Formulas are
  typeset at build time by the Markdown extension ``spaces_build.mathrender``: no page loads MathJax,
  so none is served.)
- ``on_page_content``: on every post page, inserts below the title the credit (原文作者 苏剑林,
  科学空间, link to the original, CC BY-NC-SA) and, for a post of a series, links to the other parts
  present in the archive.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path

import yaml
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from . import parsing

log = logging.getLogger("mkdocs.plugins.spaces_site")

TAXONOMY = "taxonomy.yml"
POSTS_DIR = "posts/"
SITE_HOME = "https://kexue.fm/"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/deed.zh-hans"



# --------------------------------------------------------------------------------------------------
# allow-lists


def load_taxonomy(config_dir: Path) -> dict[str, list[str]]:
    path = config_dir / TAXONOMY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise PluginError(f"spaces-site: the allow-list file {path} is missing") from e
    for key in ("categories", "tags"):
        values = data.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise PluginError(f"spaces-site: '{key}' in {path} must be a list of strings")
        if len(set(values)) != len(values):
            raise PluginError(f"spaces-site: '{key}' in {path} lists a name twice")
    return data


def apply_taxonomy(config) -> None:
    from material.plugins.tags.structure.tag import Tag

    taxonomy = load_taxonomy(Path(config.config_file_path).parent)
    for name, plugin in config.plugins.items():
        if name.endswith("/blog") or name == "blog":
            plugin.config.categories_allowed = list(taxonomy["categories"])
        elif name.endswith("/tags") or name == "tags":
            plugin.config.tags_allowed = {Tag(t) for t in taxonomy["tags"]}


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


def series_html(page, posts: dict[str, dict], post_files: dict[str, File]) -> str:
    name = page.meta.get("series")
    if not name:
        return ""
    parts = sorted(((str(m.get("date")), uri, m) for uri, m in posts.items() if m.get("series") == name))
    items = []
    for _, uri, meta in parts:
        title = html.escape(str(meta.get("title", uri)))
        if uri == page.file.src_uri:
            items.append(f'<li><strong>{title}</strong>（本文）</li>')
        else:
            href = get_relative_url(post_files[uri].url, page.url)
            items.append(f'<li><a href="{html.escape(href)}">{title}</a></li>')
    note = ("" if len(parts) > 1 else
            "<p>本存档只收录了这个系列中的这一篇，其余各篇请到科学空间阅读。</p>\n")
    return (
        '<div class="admonition abstract spaces-series" data-search-exclude>\n'
        f'<p class="admonition-title">系列：{html.escape(str(name))}</p>\n'
        f'{note}<ol>\n' + "\n".join(items) + "\n</ol>\n</div>\n"
    )


def insert_boxes(content: str, boxes: str) -> str:
    """``boxes`` right below the page's title."""
    end = content.find("</h1>")
    if end < 0:
        return boxes + content
    end += len("</h1>")
    return content[:end] + "\n" + boxes + content[end:]


class SitePlugin(BasePlugin):
    """The archive's site: allow-lists, credit and series boxes."""

    def __init__(self):
        self.posts: dict[str, dict] = {}  # src_uri -> front matter, of this build
        self.post_files: dict[str, File] = {}

    @event_priority(100)  # before the blog and tags plugins read their settings
    def on_config(self, config):
        apply_taxonomy(config)
        return config

    def on_files(self, files: Files, config) -> Files:
        self.posts, self.post_files = {}, {}
        for file in files.documentation_pages():
            if file.src_uri.startswith(POSTS_DIR):
                self.posts[file.src_uri] = parsing.front_matter(file.content_string).data
                self.post_files[file.src_uri] = file
        return files

    def on_page_content(self, content: str, page, config, files) -> str:
        if not page.file.src_uri.startswith(POSTS_DIR):
            return content
        return insert_boxes(content, credit_html(page.meta) + series_html(page, self.posts, self.post_files))


