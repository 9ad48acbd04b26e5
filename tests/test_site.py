"""The built site (built once per session by the ``built_site`` fixture of conftest.py).

Strict build, pages of the blog (posts, archive, categories, tags), nothing fetched from other hosts,
MathJax served locally, the RSS feed, credit and series boxes, and the rendered text of every post
against the seeds: not one paragraph, formula or ``<eos>`` lost on the way from Markdown to HTML.
"""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import urlparse

import pytest

from site_helpers import (ROOT, SEEDS, article_text, formulas, post_files, split_post,
                          split_text, strip_delimiters, taxonomy)

slow = pytest.mark.slow  # the tests that build (the shared build_site fixture, or a mini project)

POSTS = [(p, *split_post(p)) for p in post_files()]
FULLWIDTH = str.maketrans("：？，（）！；", ":?,()!;")


def _load_check_fidelity():
    from spaces_build import fidelity

    return fidelity


def page(site, slug: str) -> str:
    return (site / slug / "index.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# pages


@slow
def test_strict_build_has_every_page(built_site):
    assert (built_site / "index.html").is_file()
    for path, meta, _ in POSTS:
        assert (built_site / meta["slug"] / "index.html").is_file(), f"no page for {path.name}"
    for extra in ("about", "tags", "page/2", "search"):
        assert (built_site / extra).is_dir(), extra
    assert (built_site / "404.html").is_file()


@slow
def test_generated_pages_stay_out_of_search_and_notebook_pages_stay_light(built_site):
    """The articles (and the modules' index) are indexed; the module pages, notebook pages and the run report repeat what the
    articles show (or list file names and seconds), so they stay out of the index. A notebook page links
    its figures to the files the article shows instead of carrying them in base64."""
    index = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert {"wgan-not-wasserstein/", "performer/", "vmf-vae/"} <= locations
    assert "code/" in locations  # the modules' index, in the navigation
    assert not [loc for loc in locations if loc.startswith(("executions/", "code/", "notebooks/")) and loc != "code/"]
    pages = sorted((built_site / "notebooks").glob("*/index.html"))
    assert len(pages) >= 38
    linked = 0
    for path in pages:
        html = path.read_text(encoding="utf-8")
        assert "data:image/svg+xml" not in html, path  # every notebook figure is a snippet figure
        assert len(html) < 300_000, (path, len(html))
        for src in re.findall(r'<img[^>]* src="\.\./\.\./(snippet-outputs/[^"]+\.svg)"', html):
            assert (built_site / src).is_file(), src
            linked += 1
    assert linked >= 30


def test_archive_and_category_pages(built_site):
    months = {f"{m['date']:%Y/%m}" for _, m, _ in POSTS}
    for month in months:
        assert (built_site / "archive" / month / "index.html").is_file(), f"no archive page {month}"
    used = {c for _, m, _ in POSTS for c in m["categories"]}
    for category in used:
        assert (built_site / "category" / category / "index.html").is_file(), category
    # the home page is the blog index: latest article first, excerpts, pagination
    home = (built_site / "index.html").read_text(encoding="utf-8")
    latest = max(POSTS, key=lambda x: x[1]["date"])[1]
    assert home.index(html.escape(latest["title"], quote=False)) < home.index("md-post--excerpt") + 20000
    assert 'href="page/2/"' in home


@slow
def test_tags_index_lists_every_tag(built_site):
    tags_page = (built_site / "tags" / "index.html").read_text(encoding="utf-8")
    used = {t for _, m, _ in POSTS for t in m["tags"]}
    for tag in used:
        assert f'id="tag:{tag.lower()}"' in tags_page, f"tag {tag} missing on the tags page"
    assert used <= set(taxonomy()["tags"])


@slow
def test_about_page_keeps_the_licence_statement(built_site):
    about = (built_site / "about" / "index.html").read_text(encoding="utf-8")
    assert "版权科学空间致力于知识分享,所以欢迎您转载本站文章,但转载本站内容必须遵循 署名-非商业用途-保持一致 的创作共用协议。" in about
    assert "CONTRIBUTING.md" in about


# --------------------------------------------------------------------------------------------------
# no request to another host


class _Fetches(HTMLParser):
    """URLs that a browser fetches when it shows the page."""

    FETCHING_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon", "shortcut",
                     "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href"):
            if set((a.get("rel") or "").lower().split()) & self.FETCHING_RELS:
                self.urls.append(a["href"])
        elif tag in ("script", "img", "iframe", "source", "video", "audio", "embed", "track") and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "object" and a.get("data"):
            self.urls.append(a["data"])
        if a.get("style") and "url(" in a["style"]:
            self.urls += re.findall(r"url\(['\"]?([^'\")]+)", a["style"])


def _external(url: str) -> bool:
    parsed = urlparse(url)
    return bool(parsed.netloc) or parsed.scheme not in ("", "data", "blob")


@slow
def test_no_external_requests_in_html(built_site):
    offenders = []
    pages = sorted(built_site.rglob("*.html"))
    assert len(pages) > 40
    for path in pages:
        parser = _Fetches()
        parser.feed(path.read_text(encoding="utf-8"))
        offenders += [(str(path.relative_to(built_site)), u) for u in parser.urls if _external(u)]
    assert not offenders, offenders[:20]
    for css in built_site.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        urls = re.findall(r"url\(['\"]?(https?:)?//", text) + re.findall(r"@import\s+['\"]?https?:", text)
        assert not urls, f"{css.relative_to(built_site)} loads from another host"


@slow
def test_no_page_loads_mathjax(built_site):
    """Formulas are typeset at build time (spaces_build.mathrender): no MathJax script anywhere."""
    assert not (built_site / "assets" / "vendor" / "mathjax").exists()
    for _, meta, _ in POSTS[:3]:
        text = page(built_site, meta["slug"])
        assert "tex-chtml" not in text and "mathjax.js" not in text and 'class="arithmatex"' in text
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text


# --------------------------------------------------------------------------------------------------
# RSS


@slow
def test_rss_feed_of_the_articles(built_site):
    feed = built_site / "feed_rss_created.xml"
    assert feed.is_file()
    channel = ET.parse(feed).getroot().find("channel")
    items = channel.findall("item")
    assert len(items) == len(POSTS)
    by_slug = {m["slug"]: m for _, m, _ in POSTS}
    dates = []
    for item in items:
        slug = urlparse(item.findtext("link")).path.rstrip("/").rsplit("/", 1)[-1]
        assert slug in by_slug, item.findtext("link")
        assert item.findtext("title") == by_slug[slug]["title"]
        assert "点击阅读全文" in item.findtext("description")
        dates.append(by_slug[slug]["date"])
    assert dates == sorted(dates, reverse=True), "newest first"
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert 'type="application/rss+xml"' in home


# --------------------------------------------------------------------------------------------------
# credit, series, excerpt link


@slow
@pytest.mark.parametrize("path,meta,body", POSTS, ids=[p.stem for p, _, _ in POSTS])
def test_credit_on_every_post(built_site, path, meta, body):
    text = page(built_site, meta["slug"])
    credit = re.search(r'<div class="admonition quote spaces-credit"[^>]*>(.*?)</div>', text, re.S)
    assert credit, f"{meta['slug']}: no credit box"
    box = credit.group(1)
    for needed in ("苏剑林", "科学空间", "CC BY-NC-SA", "署名-非商业用途-保持一致"):
        assert needed in box
    if meta.get("source_unknown"):
        assert "原文地址未知" in box
        assert 'href="https://kexue.fm/"' in box
    else:
        assert f'href="{meta["source"]}"' in box
    # the excerpt's "read more" link goes to the original
    assert f'<a href="{meta["source"]}">点击阅读全文...</a>' in text


@slow
def test_series_boxes_link_the_other_parts(built_site):
    series: dict[str, list[dict]] = {}
    for _, meta, _ in POSTS:
        if meta.get("series"):
            series.setdefault(meta["series"], []).append(meta)
    assert {"最小熵原理", "细水长flow", "Transformer升级之路"} <= {s for s, ms in series.items() if len(ms) > 1}
    for name, metas in series.items():
        for meta in metas:
            text = page(built_site, meta["slug"])
            box = re.search(r'<div class="admonition abstract spaces-series"[^>]*>(.*?)</div>', text, re.S)
            assert box and html.escape(name) in box.group(1), meta["slug"]
            for other in metas:
                if other is not meta:
                    assert f'href="../{other["slug"]}/"' in box.group(1), (meta["slug"], other["slug"])


# --------------------------------------------------------------------------------------------------
# nothing lost between Markdown and HTML


def _norm(text: str) -> str:
    text = text.translate(FULLWIDTH).replace("**", "").replace('"', "").replace("'", "")
    return re.sub(r"\s+", "", text)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@slow
def test_rendered_posts_keep_every_seed_paragraph(built_site):
    """The text readers see (not the Markdown) holds every paragraph and formula of the seeds."""
    cf = _load_check_fidelity()
    prose, math = [], set()
    # the posts, and the about page for the original site's licence statement
    for slug in [meta["slug"] for _, meta, _ in POSTS] + ["about"]:
        text, maths = article_text(page(built_site, slug), include_code=True)
        prose.append(_norm(text))
        math |= {_squash(strip_delimiters(html.unescape(m))) for m in maths}
    blob = "\n".join(prose)
    lost, total = [], 0
    for seed in sorted(SEEDS.glob("*.txt")):
        for para in cf.seed_paragraphs(seed):
            total += 1
            para_prose, para_math = cf.split_math(para)
            ok = all(_squash(strip_delimiters(f)) in math for f in para_math)
            ok &= all(_norm(p) in blob for p in para_prose.split("\u2063") if _norm(p))
            if not ok:
                lost.append(f"{seed.name}: {para[:80]}")
    assert total == 259
    assert not lost, "\n".join(lost)


@slow
def test_eos_is_visible(built_site):
    text, _ = article_text(page(built_site, "seq2seq-non-stopping"))
    assert text.count("<eos>") >= 2, "the <eos> tokens of the prose must be shown, not eaten as HTML"
    home_and_pages = [built_site / "index.html", *sorted((built_site / "page").glob("*/index.html"))]
    assert sum(p.read_text(encoding="utf-8").count("&lt;eos&gt;") for p in home_and_pages) >= 2


@slow
@pytest.mark.parametrize("path,meta,body", POSTS, ids=[p.stem for p, _, _ in POSTS])
def test_every_formula_reaches_mathjax(built_site, built_posts, path, meta, body):
    """Each formula of the Markdown is one .arithmatex element with the same TeX (none mangled)."""
    _, maths = article_text(page(built_site, meta["slug"]))
    got = [_squash(strip_delimiters(html.unescape(m))) for m in maths]
    versions = [[_squash(strip_delimiters(f)) for f in formulas(split_text(text)[1])]
                for text in built_posts[path.name]]
    assert got in versions, f"HTML: {got}\nMarkdown: {versions[-1]}"


# --------------------------------------------------------------------------------------------------
# the allow-lists fail the build


def _mini_project(tmp_path, category: str, tag: str):
    (tmp_path / "docs" / "posts").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("# Blog\n", encoding="utf-8")
    (tmp_path / "docs" / "posts" / "p.md").write_text(textwrap.dedent(f"""\
        ---
        date: 2020-01-01
        categories: [{category}]
        tags: [{tag}]
        ---
        # P
        text
        <!-- more -->
        """), encoding="utf-8")
    (tmp_path / "taxonomy.yml").write_text("categories: [信息时代]\ntags: [优化]\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: t
        theme: {{name: material}}
        plugins:
          - blog: {{blog_dir: .}}
          - tags
          - spaces-site
        """), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


@slow
def test_mini_project_with_allowed_names_builds(tmp_path):
    proc = _mini_project(tmp_path, "信息时代", "优化")
    assert proc.returncode == 0, proc.stderr


@slow
def test_tag_outside_the_allow_list_fails_the_build(tmp_path):
    proc = _mini_project(tmp_path, "信息时代", "不存在的标签")
    assert proc.returncode != 0
    assert "posts/p.md" in proc.stderr and "不存在的标签" in proc.stderr, proc.stderr


@slow
def test_category_outside_the_allow_list_fails_the_build(tmp_path):
    proc = _mini_project(tmp_path, "不存在的分类", "优化")
    assert proc.returncode != 0
    assert "posts/p.md" in proc.stderr and "不存在的分类" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------------------
# the escaping of <word> tokens (no build): the Markdown extension spaces_build.pseudotags


def _hook():
    from spaces_build import pseudotags

    return pseudotags


@pytest.mark.parametrize("source,expected", [
    ("直到出现<eos>标记为止", "直到出现&lt;eos&gt;标记为止"),
    ("<s> and </s> and <unk>", "<s> and </s> and &lt;unk&gt;"),        # <s> is an HTML element
    ("`<eos>` in code", "`<eos>` in code"),
    ("$a<b>c$ and $$x<y>z$$", "$a<b>c$ and $$x<y>z$$"),
    ("\\begin{equation}p<q>r\\end{equation} <eos>", "\\begin{equation}p<q>r\\end{equation} &lt;eos&gt;"),
    ("<!-- more --> <span class=\"x\">t</span> <figure markdown=\"span\">", "<!-- more --> <span class=\"x\">t</span> <figure markdown=\"span\">"),
    ("<https://kexue.fm/> <br/>", "<https://kexue.fm/> <br/>"),
])
def test_pseudo_tags_are_escaped_outside_code_and_math(source, expected):
    assert _hook().escape_pseudo_tags(source) == expected


def test_pseudo_tags_render_as_text():
    import markdown

    hook = _hook()
    md = markdown.Markdown(extensions=["pymdownx.superfences", "pymdownx.arithmatex", hook.PseudoTagExtension()],
                           extension_configs={"pymdownx.arithmatex": {"generic": True}})
    out = md.convert("出现<eos>为止, $y_{<t}$\n\n```\nx = '<eos>'\n```\n\n    indented <eos>\n")
    assert "出现&lt;eos&gt;为止" in out
    assert "&lt;eos&gt;" in out.split("<pre")[1]          # code shows the text as written
    assert "&amp;lt;" not in out                            # nothing escaped twice
    assert "y_{&lt;t}" in out                               # the formula reaches MathJax intact
