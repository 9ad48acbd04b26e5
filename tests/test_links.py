"""Links of the built site (conftest.py's ``built_site``: the real archive, built once).

- Internal links and anchors of the Markdown are MkDocs' own check: ``validation:`` in mkdocs.yml sets
  every kind to ``warn`` and ``spaces build`` is ``--strict``, so a broken one fails the build (the
  build of ``built_site`` passing is that check; a tiny project shows it fires).
- The RSS feeds parse as XML and hold one item per post, each linking to a page of the site; the JSON
  feeds likewise.
- ``sitemap.xml`` (and its ``.gz``) is a valid sitemap whose every URL is a built page.
"""
from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from spaces_build.cli import read_yaml

from site_helpers import ROOT, post_files

pytestmark = pytest.mark.slow

_CONFIG = read_yaml(ROOT / "mkdocs.yml")  # !ENV and !relative resolved as MkDocs does
SITE_URL = _CONFIG["site_url"]  # pages are resolved at their deployed address: root-absolute links too
def _local(url: str) -> str | None:
    """The site-relative path of an address of this site, else None (another host)."""
    if not url.startswith(SITE_URL):
        return None
    return unquote(urlsplit(url).path[len(urlsplit(SITE_URL).path):])


def _target_file(site: Path, path: str) -> Path | None:
    candidate = site / path
    if path == "" or path.endswith("/"):
        candidate = candidate / "index.html"
    elif candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


def test_mkdocs_checks_every_kind_of_link():
    assert _CONFIG["validation"] == {"omitted_files": "warn", "absolute_links": "warn",
                                     "unrecognized_links": "warn", "anchors": "warn"}


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    import subprocess
    import sys
    import textwrap

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n## Part\n\n[ok](other.md#there) [part](#part)\n")
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## There\n\n[gone](missing.md) [nowhere](index.md#nope)\n")
    config = {k: _CONFIG[k] for k in ("validation",)}
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: t
        validation: {json.dumps(config["validation"])}
        """))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "missing.md" in proc.stderr and "#nope" in proc.stderr
    assert "#there" not in proc.stderr and "#part" not in proc.stderr  # the good links pass


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


def test_sitemap_lists_only_built_pages(built_site):
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
