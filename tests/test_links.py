"""Link checker over the built site (conftest.py's ``built_site``: the real archive, built once).

- Every internal link of every page (``<a href>``, ``<link href>``, ``<img>``/``<script>``/``<source>``
  ``src``, absolute ``site_url`` addresses included) points at a file of the site, and every anchor
  (``#id``) at an element of the target page with that ``id`` (or ``name``).
- No ``javascript:`` address anywhere.
- The RSS feeds parse as XML and hold one item per post, each linking to a page of the site; the JSON
  feeds likewise.
- ``sitemap.xml`` (and its ``.gz``) is a valid sitemap whose every URL is a built page.
"""
from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

from site_helpers import ROOT, post_files

pytestmark = pytest.mark.slow

_CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nplugins:")[0])
SITE_URL = _CONFIG["site_url"]  # pages are resolved at their deployed address: root-absolute links too
REPO_URL = _CONFIG["repo_url"].rstrip("/")
LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src", "iframe": "src",
              "embed": "src", "audio": "src", "video": "src", "track": "src", "object": "data"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        attr = LINK_ATTRS.get(tag)
        if attr and a.get(attr) is not None:
            if tag == "link" and not set((a.get("rel") or "").split()) - {"preconnect", "dns-prefetch"}:
                return
            self.links.append((tag, a[attr]))
        if a.get("srcset"):
            self.links += [(tag, part.split()[0]) for part in a["srcset"].split(",") if part.strip()]


def _local(url: str) -> str | None:
    """The site-relative path of an address of this site, else None (another host)."""
    if not url.startswith(SITE_URL):
        return None
    return unquote(urlsplit(url).path[len(urlsplit(SITE_URL).path):])


def _outside_the_site(url: str) -> bool:
    """Same host as the site but above its root (a ``../`` too many, a ``/`` link that forgets the
    site's path): broken once deployed."""
    parts, site = urlsplit(url), urlsplit(SITE_URL)
    return parts.netloc == site.netloc and not parts.path.startswith(site.path)


def _repository_file(url: str) -> str | None:
    """For a link to a file of the repository on GitHub (``edit/main/...``, ``blob/main/...``): its path."""
    for kind in ("edit", "blob", "tree", "raw"):
        prefix = f"{REPO_URL}/{kind}/main/"
        if url.startswith(prefix):
            return unquote(urlsplit(url).path[len(urlsplit(prefix).path):])
    return None


def _target_file(site: Path, path: str) -> Path | None:
    candidate = site / path
    if path == "" or path.endswith("/"):
        candidate = candidate / "index.html"
    elif candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


@pytest.fixture(scope="module")
def pages(built_site) -> dict[str, _Page]:
    parsed = {}
    for path in sorted(built_site.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        page.close()
        parsed[path.relative_to(built_site).as_posix()] = page
    return parsed


def test_every_internal_link_and_anchor_resolves(built_site, pages):
    assert len(pages) > 100
    broken, checked = [], 0
    for rel, page in pages.items():
        for tag, url in page.links:
            if url.strip().lower().startswith("javascript:"):
                broken.append(f"{rel}: <{tag}> {url!r} is a javascript: address")
                continue
            absolute = urljoin(SITE_URL + rel, url.strip())
            if _outside_the_site(absolute):
                broken.append(f"{rel}: <{tag}> {url!r} -> {absolute}: outside the site")
                continue
            repo_file = _repository_file(absolute)
            if repo_file is not None:
                checked += 1
                if not (ROOT / repo_file).exists():
                    broken.append(f"{rel}: <{tag}> {url!r}: no file {repo_file!r} in the repository")
                continue
            path = _local(absolute)
            if path is None:
                continue  # another host (the original articles, the licence ...), or mailto: / data:
            checked += 1
            target = _target_file(built_site, path)
            if target is None:
                broken.append(f"{rel}: <{tag}> {url!r} -> {path!r}: no such file")
                continue
            fragment = unquote(urlsplit(absolute).fragment)
            if fragment and target.suffix == ".html":
                target_rel = target.relative_to(built_site).as_posix()
                if fragment not in pages[target_rel].ids:
                    broken.append(f"{rel}: <{tag}> {url!r}: no id {fragment!r} in {target_rel}")
    assert checked > 5_000
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:60])


@pytest.mark.parametrize("name", ["feed_rss_created.xml", "feed_rss_updated.xml"])
def test_rss_feed_is_xml_with_an_item_per_post_linking_into_the_site(built_site, name):
    root = ET.parse(built_site / name).getroot()
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert _local(channel.findtext("link")) == ""
    items = channel.findall("item")
    assert len(items) == len(post_files()) == 40
    slugs = set()
    for item in items:
        for key in ("title", "link", "description", "pubDate"):
            assert (item.findtext(key) or "").strip(), (key, item.findtext("link"))
        path = _local(item.findtext("link"))
        assert path is not None and _target_file(built_site, path), item.findtext("link")
        slugs.add(path.strip("/"))
        guid = item.findtext("guid")
        if guid and (guid.startswith("http") or item.find("guid").get("isPermaLink") != "false"):
            assert _target_file(built_site, _local(guid) or "\0"), guid
    assert slugs == {p.stem for p in post_files()}
    image = channel.find("image")
    if image is not None:  # an <image> must name a real picture of the site
        assert _target_file(built_site, _local(image.findtext("url") or "") or "\0"), image.findtext("url")
    for link in root.iter("{http://www.w3.org/2005/Atom}link"):
        assert _target_file(built_site, _local(link.get("href")) or "\0"), link.get("href")


@pytest.mark.parametrize("name", ["feed_json_created.json", "feed_json_updated.json"])
def test_json_feeds_link_into_the_site(built_site, name):
    path = built_site / name
    if not path.exists():
        pytest.skip(f"no {name}")
    feed = json.loads(path.read_text(encoding="utf-8"))
    assert len(feed["items"]) == 40
    for item in feed["items"]:
        assert _target_file(built_site, _local(item["url"]) or "\0"), item["url"]


def test_sitemap_lists_only_built_pages(built_site, pages):
    ns = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    data = (built_site / "sitemap.xml").read_bytes()
    assert gzip.decompress((built_site / "sitemap.xml.gz").read_bytes()) == data
    root = ET.fromstring(data)
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    urls = [u.findtext("sm:loc", namespaces=ns) for u in root.findall("sm:url", ns)]
    assert len(urls) == len(set(urls)) > 40
    missing = [u for u in urls if _local(u) is None or _target_file(built_site, _local(u)) is None]
    assert not missing, missing
    listed = {_target_file(built_site, _local(u)).relative_to(built_site).as_posix() for u in urls}
    for post in post_files():  # every article is in it
        assert f"{post.stem}/index.html" in listed, post.stem
