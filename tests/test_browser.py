"""The built site in headless Chromium (playwright driving Debian's chromium, see browser_helpers.py).

The math is typeset at build time (spaces_build.mathrender): pages carry MathJax's SVG output and
its assistive MathML, and load no MathJax script. On every article page, with JavaScript on, then
with JavaScript off:

- every formula of the post's Markdown is on the page, drawn (an ``<svg>`` of non-zero size inside an
  ``mjx-container``), each ``.arithmatex`` element holding one;
- no MathJax error (``merror``), no undefined macro (red text), no unresolved reference (``???``),
  no raw LaTeX in the visible text;
- each ``\\eqref`` links to the anchor of the equation whose ``\\label`` it names (and, on a page made
  for the purpose, following the link lands on that equation);
- every request went to the local server, none failed, no JavaScript error, no MathJax script.

Also: listing pages (excerpts), instant navigation, search results shown without jieba's zero-width
separators, and phones: at 390 px no page scrolls sideways (long formulas and code scroll inside
their own block), with screenshots of the home page, the article with the most formulas and a code
page (written to ``$SPACES_SCREENSHOTS``, else pytest's temporary folder).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote, unquote, urljoin

import markdown
import pytest

from browser_helpers import DESKTOP, PHONE, Recorder, launch
from site_helpers import ROOT, formulas, post_files, split_post, split_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POSTS = [(p.name, split_post(p)[0]["slug"]) for p in post_files()]
RAW_LATEX = [r"\\[A-Za-z]+", r"\$\$", r"\$[^$\s][^$]*\$", r"\\\(", r"\\\[", r"[_^]\{"]
LABEL = re.compile(r"\\label\{([^}]*)\}")
EQREF = re.compile(r"\\eqref\{([^}]*)\}")

# Everything the checks need, read from the page (works with JavaScript disabled: playwright
# evaluates in its own world).
INSPECT = r"""
() => {
  const scope = document.querySelector("article.md-content__inner") || document.body;
  const arith = Array.from(scope.querySelectorAll(".arithmatex"));
  const containers = Array.from(scope.querySelectorAll("mjx-container"));
  const formulas = containers.map((c) => {
    const svg = c.querySelector(":scope > svg");
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const math = c.querySelector("mjx-assistive-mml > math");
    const links = Array.from(c.querySelectorAll("svg a[href]")).map((a) => {
      const href = a.getAttribute("href");
      const target = href.startsWith("#") ? document.getElementById(decodeURIComponent(href.slice(1))) : null;
      return {href: href, target: target ? target.id : null,
              targetFormula: target ? containers.indexOf(target.closest("mjx-container")) : -1};
    });
    return {drawn: box.width > 0 && box.height > 0, mml: math ? math.outerHTML : "",
            ids: Array.from(c.querySelectorAll("[id^='mjx-eqn']")).map((e) => e.id), links: links};
  });
  const red = Array.from(scope.querySelectorAll("mjx-container svg *")).filter(
    (el) => ["rgb(255, 0, 0)", "red"].includes(getComputedStyle(el).fill)).length;
  // visible text outside formulas and code (no filter callback: it cannot run with JavaScript off)
  const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (!parent || !parent.closest("mjx-container, pre, code, script, style, .snippet-output")) {
      texts.push(walker.currentNode.nodeValue);
    }
  }
  return {
    path: location.pathname,
    arithmatex: arith.length,
    empty: arith.filter((el) => !el.querySelector("mjx-container")).length,
    formulas: formulas,
    merror: scope.querySelectorAll("[data-mml-node='merror'], merror").length,
    // glyphs a formula <use>s that the page does not define
    missingGlyphs: Array.from(scope.querySelectorAll("mjx-container use")).filter((u) =>
      !document.getElementById((u.getAttribute("xlink:href") || u.getAttribute("href") || "#").slice(1))).length,
    red: red,
    text: texts.join(""),
    mathjaxGlobal: typeof window.MathJax !== "undefined",
  };
}
"""


def check(stats: dict, tex: list[str] | None, where: str) -> list[str]:
    """Problems of one inspected page; ``tex``: the formulas of its Markdown, in order (None: an
    excerpt listing, where only the generic checks apply)."""
    out = []
    shown = stats["formulas"]
    if stats["merror"]:
        out.append(f"{where}: {stats['merror']} MathJax errors")
    if stats["missingGlyphs"]:
        out.append(f"{where}: {stats['missingGlyphs']} glyphs used by formulas are not defined on the page")
    if stats["red"]:
        out.append(f"{where}: {stats['red']} red elements in formulas (undefined macros)")
    if stats["empty"]:
        out.append(f"{where}: {stats['empty']} .arithmatex elements without a formula")
    if len(shown) != stats["arithmatex"]:
        out.append(f"{where}: {len(shown)} formulas for {stats['arithmatex']} .arithmatex elements")
    if stats["mathjaxGlobal"]:
        out.append(f"{where}: window.MathJax exists (a MathJax script ran)")
    for i, f in enumerate(shown):
        if not f["drawn"]:
            out.append(f"{where}: formula {i} is not drawn (empty SVG)")
        if not f["mml"]:
            out.append(f"{where}: formula {i} has no assistive MathML")
        if 'mathcolor="red"' in f["mml"] or "<merror" in f["mml"]:
            out.append(f"{where}: formula {i}: error or undefined macro: {f['mml'][:300]}")
        if "???" in f["mml"]:
            out.append(f"{where}: formula {i}: unresolved reference: {f['mml'][:300]}")
        for link in f["links"]:
            if link["target"] is None:
                out.append(f"{where}: formula {i} links to {link['href']}, which is not on the page")
    if tex is not None:
        if len(shown) != len(tex):
            out.append(f"{where}: {len(shown)} formulas on the page, the Markdown has {len(tex)}")
        else:
            out += check_eqrefs(shown, tex, where)
    for pattern in RAW_LATEX:
        m = re.search(pattern, stats["text"])
        if m:
            start = max(0, m.start() - 30)
            out.append(f"{where}: raw LaTeX in the visible text: …{stats['text'][start:m.end() + 30]}…")
    if "???" in stats["text"]:
        out.append(f"{where}: ??? in the visible text")
    return out


def check_eqrefs(shown: list[dict], tex: list[str], where: str) -> list[str]:
    """Each \\eqref{name} of formula j links to the anchor that formula i, holding \\label{name}, carries."""
    out = []
    labelled = {name: i for i, t in enumerate(tex) for name in LABEL.findall(t)}
    for name, i in labelled.items():
        if f"mjx-eqn:{name}" not in shown[i]["ids"]:
            out.append(f"{where}: formula {i} has \\label{{{name}}} but no anchor mjx-eqn:{name}")
    for j, t in enumerate(tex):
        for name in EQREF.findall(t):
            href = "#" + quote(f"mjx-eqn:{name}", safe="")
            links = [link for link in shown[j]["links"] if link["href"] == href]
            if not links:
                out.append(f"{where}: formula {j}: \\eqref{{{name}}} has no link to {href}")
            elif name not in labelled:
                out.append(f"{where}: formula {j}: \\eqref{{{name}}} names no \\label of the page")
            elif any(link["targetFormula"] != labelled[name] for link in links):
                out.append(f"{where}: formula {j}: \\eqref{{{name}}} does not land on formula {labelled[name]}")
    return out


def post_formulas(built_posts, name: str) -> list[str]:
    """The formulas of the post's Markdown as the build read it (conftest's built_posts)."""
    texts = built_posts[name]
    return formulas(split_text(texts[-1])[1])


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            b = launch(p)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser, site_server):
    context = browser.new_context(**DESKTOP)
    tab = context.new_page()
    tab.recorder = Recorder(tab, site_server)
    yield tab
    context.close()


def visit(page, url: str) -> dict:
    page.recorder.reset()
    page.goto(url, wait_until="load")
    return page.evaluate(INSPECT)


def no_mathjax_scripts(page, where: str) -> list[str]:
    return [f"{where}: loads a MathJax script: {url}" for url in page.recorder.scripts if "mathjax" in url.lower()]


def test_every_article_page(page, site_server, built_posts):
    problems, shown = [], 0
    for name, slug in POSTS:
        stats = visit(page, urljoin(site_server, f"{slug}/"))
        problems += check(stats, post_formulas(built_posts, name), slug)
        problems += [f"{slug}: {p}" for p in page.recorder.problems]
        problems += no_mathjax_scripts(page, slug)
        shown += len(stats["formulas"])
    assert not problems, "\n".join(problems)
    assert shown >= 77, "the 40 excerpts alone hold 77 formulas"


def test_math_visible_without_javascript(browser, site_server, built_posts):
    """With JavaScript disabled every article still shows all its formulas, drawn."""
    context = browser.new_context(java_script_enabled=False, **DESKTOP)
    tab = context.new_page()
    problems = []
    try:
        for name, slug in POSTS:
            tab.goto(urljoin(site_server, f"{slug}/"), wait_until="load")
            problems += check(tab.evaluate(INSPECT), post_formulas(built_posts, name), f"{slug} (no JS)")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_listing_pages(page, site_server, built_site):
    """Home, its pagination, archive and category pages: the excerpts' formulas are there too."""
    pages = ["", *sorted(f"page/{p.name}/" for p in (built_site / "page").iterdir())]
    pages += sorted(str(p.parent.relative_to(built_site)) + "/" for p in built_site.glob("archive/*/*/index.html"))[:3]
    pages += sorted(str(p.parent.relative_to(built_site)) + "/" for p in built_site.glob("category/*/index.html"))
    problems, shown = [], 0
    for path in pages:
        stats = visit(page, urljoin(site_server, path))
        problems += check(stats, None, path or "/")
        problems += [f"{path or '/'}: {p}" for p in page.recorder.problems]
        problems += no_mathjax_scripts(page, path or "/")
        shown += len(stats["formulas"])
    assert not problems, "\n".join(problems)
    assert shown > 0


def test_instant_navigation_shows_the_new_page(page, site_server, built_posts):
    """First load, then pages reached by clicking (Material's instant navigation, no reload)."""
    tex = {slug: post_formulas(built_posts, name) for name, slug in POSTS}
    first = visit(page, site_server)
    problems = check(first, None, "/")
    route = [slug for slug in ("transformer-upgrade-4-2d-rope", "transformer-upgrade-1-sinusoidal",
                               "transformer-upgrade-3-linear-attention") if slug in tex]
    loads = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and loads.append(frame.url))
    page.recorder.reset()
    start = len(loads)
    while route:
        # The page being left keeps its <h1> until instant navigation swaps the content in: mark it,
        # and wait for an unmarked one (the URL changes first; reading right then counted the old page).
        clicked = page.evaluate(
            "(slugs) => { const old = document.querySelector('article.md-content__inner h1');"
            " if (old) old.dataset.spacesLeft = '1';"
            " for (const a of document.querySelectorAll('article a[href]')) {"
            " const path = new URL(a.href, location.href).pathname;"
            " const slug = slugs.find(s => path.endsWith('/' + s + '/'));"
            " if (slug) { a.click(); return slug; } } return null; }", route)
        assert clicked, f"no link to any of {route} on the page"
        route.remove(clicked)
        page.wait_for_function("(slug) => { const h1 = document.querySelector('article.md-content__inner h1');"
                               " return location.pathname.endsWith('/' + slug + '/') && h1 && !h1.dataset.spacesLeft; }",
                               arg=clicked)
        page.wait_for_load_state("load")
        stats = page.evaluate(INSPECT)
        problems += check(stats, tex[clicked], f"{clicked} (instant)")
    problems += page.recorder.problems
    assert not [u for u in loads[start:] if not u.startswith(site_server)], loads
    # instant navigation changes the URL with history.pushState: no new document was loaded
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert not problems, "\n".join(problems)


EQREF_PAGE = r"""# Numbered equations

Forward: see $\eqref{eq:second}$, and the first, $\eqref{eq:first}$.

\begin{equation}\label{eq:first} a = b \end{equation}

""" + "Filler paragraph so that the equations sit far apart.\n\n" * 60 + r"""
$$E = mc^2 \tag{7}\label{eq:tagged}$$

\begin{equation}\label{eq:second} c = \frac{1}{2} \end{equation}

Back: $\eqref{eq:first}$, $\eqref{eq:tagged}$.
"""


def test_eqref_follows_to_its_equation(browser, tmp_path):
    """On a page with \\eqref (no post of the archive has one yet): clicking each reference brings
    its equation into view and makes its anchor the :target."""
    body = markdown.markdown(EQREF_PAGE, extensions=["pymdownx.arithmatex", "spaces_build.mathrender"],
                             extension_configs={"pymdownx.arithmatex": {"generic": True}})
    css = (ROOT / "docs" / "stylesheets" / "mathjax.css").read_text(encoding="utf-8")
    (tmp_path / "page.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head>"
        f"<body><article class='md-content__inner'>{body}</article></body></html>", encoding="utf-8")
    context = browser.new_context(viewport={"width": 800, "height": 400})
    tab = context.new_page()
    try:
        tab.goto((tmp_path / "page.html").as_uri())
        stats = tab.evaluate(INSPECT)
        tex = formulas(EQREF_PAGE)
        assert not check(stats, tex, "eqref page")
        links = [(i, link) for i, f in enumerate(stats["formulas"]) for link in f["links"]]
        assert len(links) == 4
        for i, link in links:
            tab.evaluate("window.scrollTo(0, 0)")
            tab.locator("mjx-container").nth(i).locator(f"a[href='{link['href']}']").click()
            landed = tab.evaluate("""() => { const t = document.querySelector(':target');
                const r = t ? t.getBoundingClientRect() : null;
                return {id: t ? t.id : null, visible: !!r && r.bottom > 0 && r.top < innerHeight}; }""")
            assert landed == {"id": link["target"], "visible": True}, (link, landed)
    finally:
        context.close()


def test_search_results_without_zero_width_separators(page, site_server, built_site):
    """The index keeps jieba's U+200B (segmentation); the results shown carry none. The index is
    fetched when the reader turns to the search box, not on every first visit."""
    index = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert any("\u200b" in doc["text"] for doc in index["docs"]), "the index lost its separators"
    visit(page, site_server)
    fetched = "() => performance.getEntriesByType('resource').some((e) => e.name.includes('search_index.json'))"
    page.wait_for_timeout(500)
    assert not page.evaluate(fetched), "the search index was fetched before anyone searched (overrides/main.html)"
    problems = []
    for query in ("线性", "梯度", "采样", "Performer"):
        box = page.locator("input.md-search__input")
        box.click()
        box.fill("")
        box.press_sequentially(query, delay=30)
        box.press("End")   # Chinese is inserted as text, without key events: one key-up for Material
        page.wait_for_function(
            "(q) => { const m = document.querySelector('.md-search-result__item mark');"
            " return m && m.textContent.replace(/\u200b/g, '').toLowerCase().includes(q.toLowerCase()); }",
            arg=query, timeout=30_000)
        shown = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.md-search-result__item h1, .md-search-result__item h2, .md-search-result__item p'))
            .map((el) => el.textContent)""")
        assert shown, f"no result for {query}"
        problems += [f"{query}: {t[:80]!r}" for t in shown if "\u200b" in t]
        page.keyboard.press("Escape")
    assert page.evaluate(fetched)
    assert not problems, "zero-width separators shown:\n" + "\n".join(problems)


def test_phone_width(browser, site_server, built_site, built_posts, tmp_path_factory):
    """At 390 px, no page scrolls sideways; wide formulas and code scroll inside their block."""
    shots = Path(os.environ.get("SPACES_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    heaviest = max(POSTS, key=lambda p: len(post_formulas(built_posts, p[0])))[1]
    code_pages = sorted(p.parent.name for p in built_site.glob("code/*/index.html"))
    assert code_pages, "no code page was built"
    pages = ["", *(f"{slug}/" for _, slug in POSTS), *(f"code/{name}/" for name in code_pages)]
    shoot = {"": "home", f"{heaviest}/": "formulas", f"code/{code_pages[0]}/": "code"}
    context = browser.new_context(**PHONE)
    tab = context.new_page()
    problems = []
    try:
        for path in pages:
            tab.goto(urljoin(site_server, path), wait_until="load")
            r = tab.evaluate("""() => {
                const W = document.documentElement.clientWidth;
                const blocks = Array.from(document.querySelectorAll("div.arithmatex, pre"))
                  .filter((el) => el.scrollWidth > el.clientWidth + 1)
                  .map((el) => ({tag: el.tagName, overflow: getComputedStyle(el).overflowX,
                                 inner: getComputedStyle(el.querySelector("code") || el).overflowX}));
                return {W: W, scroll: document.documentElement.scrollWidth,
                        body: document.body.scrollWidth, blocks: blocks}; }""")
            if r["W"] != 390:
                problems.append(f"/{path}: viewport {r['W']} px, not 390")
            if max(r["scroll"], r["body"]) > r["W"]:
                problems.append(f"/{path}: the page scrolls sideways ({r['scroll']} px for {r['W']})")
            for block in r["blocks"]:
                if "auto" not in (block["overflow"], block["inner"]) and "scroll" not in (block["overflow"], block["inner"]):
                    problems.append(f"/{path}: a wide {block['tag']} does not scroll inside itself: {block}")
            if path in shoot:
                tab.screenshot(path=str(shots / f"390px-{shoot[path]}.png"), full_page=True)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in shots.glob("390px-*.png")) == ["390px-code.png", "390px-formulas.png",
                                                                 "390px-home.png"]


def test_real_urls(built_site):
    """No placeholder address anywhere; canonical links and RSS items are absolute addresses of
    site_url (from $SPACES_SITE_URL, else the local server's), the feeds parse."""
    import xml.etree.ElementTree as ET

    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.utils.yaml import get_yaml_loader, yaml_load

    # MkDocs' own YAML loader: !ENV resolved as the build resolved it
    config = yaml_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"),
                       loader=get_yaml_loader(config=MkDocsConfig()))
    site_url = config["site_url"]
    assert site_url.startswith(("http://", "https://")) and site_url.endswith("/"), site_url
    placeholders = [str(p.relative_to(built_site)) for p in built_site.rglob("*")
                    if p.is_file() and p.suffix in {".html", ".xml", ".json", ".ipynb", ".txt", ".js", ".css"}
                    and b"example.github.io" in p.read_bytes()]
    assert not placeholders, placeholders[:20]
    pages = list(built_site.rglob("index.html"))
    for page in pages:
        canonical = re.search(r'<link rel="canonical" href="([^"]+)"', page.read_text(encoding="utf-8"))
        rel = page.parent.relative_to(built_site).as_posix()
        expected = site_url if rel == "." else f"{site_url}{rel}/"
        assert canonical and unquote(canonical.group(1)) == expected, (rel, canonical and canonical.group(1))
    rss = [plugin["rss"] for plugin in config["plugins"] if isinstance(plugin, dict) and "rss" in plugin][0]
    for name in ("feed_rss_created.xml", "feed_rss_updated.xml"):
        channel = ET.parse(built_site / name).getroot().find("channel")
        items = channel.findall("item")
        assert len(items) == len(POSTS), name
        assert channel.findtext("image/url") == rss["image"] and rss["image"].startswith(site_url)
        assert (built_site / rss["image"][len(site_url):]).is_file(), rss["image"]
        for item in items:
            for field in ("link", "guid"):
                url = item.findtext(field)
                assert url.startswith(site_url), (name, field, url)
                assert (built_site / url[len(site_url):] / "index.html").is_file(), (name, url)
