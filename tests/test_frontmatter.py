"""Front matter of the 40 posts: required keys, dates, allow-listed category and tags, unique slugs."""
from __future__ import annotations

import datetime
import re

import pytest

from site_helpers import post_files, split_post, taxonomy

REQUIRED = ("title", "date", "slug", "categories", "tags", "source", "license", "authors")
ALLOWED_KEYS = set(REQUIRED) | {"source_unknown", "category_assigned", "series", "draft",
                                "description", "search", "hide"}
POSTS = post_files()


def test_forty_posts():
    assert len(POSTS) == 40, [p.name for p in POSTS]


@pytest.mark.parametrize("path", POSTS, ids=lambda p: p.stem)
def test_post_front_matter(path):
    meta, body = split_post(path)
    missing = [k for k in REQUIRED if k not in meta]
    assert not missing, f"{path.name}: missing {missing}"
    assert set(meta) <= ALLOWED_KEYS, f"{path.name}: unknown keys {set(meta) - ALLOWED_KEYS}"

    # YAML reads an unquoted YYYY-MM-DD as a date; the text itself must be in that form
    raw_date = re.search(r"^date:\s*(\S+)\s*$", path.read_text(encoding="utf-8"), re.M).group(1)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_date), f"{path.name}: date {raw_date!r}"
    assert isinstance(meta["date"], datetime.date)
    assert datetime.date(2000, 1, 1) <= meta["date"] <= datetime.date(2030, 1, 1)

    assert isinstance(meta["title"], str) and meta["title"].strip()
    assert meta["slug"] == path.stem, "the file is named after its slug"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", meta["slug"])

    assert isinstance(meta["categories"], list) and len(meta["categories"]) == 1
    assert isinstance(meta["tags"], list) and meta["tags"], f"{path.name}: no tags"
    assert len(set(meta["tags"])) == len(meta["tags"]), f"{path.name}: a tag twice"

    assert meta["authors"] == ["sujianlin"]
    assert meta["license"] == "CC BY-NC-SA"
    assert re.fullmatch(r"https://kexue\.fm/(archives/\d+)?", meta["source"]), meta["source"]
    if meta.get("source_unknown"):
        assert meta["source_unknown"] is True and meta["source"] == "https://kexue.fm/"
    else:
        assert "archives/" in meta["source"]
    for flag in ("category_assigned", "source_unknown"):
        assert meta.get(flag, True) is True, f"{path.name}: {flag} is true or absent"
    if "series" in meta:
        assert isinstance(meta["series"], str) and meta["series"].strip()

    # the excerpt ends with the link to the original, then the separator
    assert f"[点击阅读全文...]({meta['source']})" in body
    assert "<!-- more -->" in body
    assert body.index(f"[点击阅读全文...]({meta['source']})") < body.index("<!-- more -->")


def test_categories_and_tags_in_allow_list():
    allowed = taxonomy()
    bad = []
    for path in POSTS:
        meta, _ = split_post(path)
        bad += [(path.name, "category", c) for c in meta["categories"] if c not in allowed["categories"]]
        bad += [(path.name, "tag", t) for t in meta["tags"] if t not in allowed["tags"]]
    assert not bad, f"not in taxonomy.yml: {bad}"


def test_allow_list_has_no_duplicates():
    allowed = taxonomy()
    for key in ("categories", "tags"):
        assert len(set(allowed[key])) == len(allowed[key]), f"taxonomy.yml lists a {key[:-1]} twice"


def test_unique_slugs_titles_and_sources():
    metas = [split_post(p)[0] for p in POSTS]
    for key in ("slug", "title"):
        values = [m[key] for m in metas]
        assert len(set(values)) == len(values), f"duplicate {key}"
    known = [m["source"] for m in metas if not m.get("source_unknown")]
    assert len(set(known)) == len(known), "two posts link the same original"
    assert sum(1 for m in metas if m.get("source_unknown")) == 2
