"""The render cache of generated pages (``spaces_build.pagecache``) through real builds of the small
test project of tests/test_engine.py: a stored page is served only while everything it is made of is
unchanged, it is the page a fresh render gives, byte for byte, and a build that warned stores nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_engine import MKDOCS_YML, SPACES_PLUGIN, build, make_project

pytestmark = pytest.mark.slow

GENERATED = ["code/util/index.html", "code/waves/index.html", "code/unused/index.html",
             "code/__init__/index.html", "notebooks/demo/index.html"]
MARK = "<!-- served from .cache/pages -->"


def entries(project: Path) -> list[Path]:
    return sorted((project / ".cache" / "pages").glob("*.json"))


def mark_entries(project: Path) -> None:
    """Put a visible mark into every stored page: a page that shows it was served from the cache."""
    for path in entries(project):
        entry = json.loads(path.read_text(encoding="utf-8"))
        entry["output"] = entry["output"].replace("</body>", f"{MARK}</body>", 1)
        path.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")


def site_page(project: Path, rel: str) -> str:
    return (project / "site" / rel).read_text(encoding="utf-8")


def ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_stored_pages_are_the_rendered_ones_and_follow_every_input(tmp_path):
    project = make_project(tmp_path / "project")
    ok(build(project))  # renders every page and stores the generated ones
    fresh = {rel: site_page(project, rel) for rel in GENERATED}
    assert len(entries(project)) == len(GENERATED)
    assert '<link rel="stylesheet" href="../../assets/stylesheets/jupyter-' in fresh["notebooks/demo/index.html"]

    again = build(project)  # nothing changed: the same bytes (from the cache, as the mark shows below)
    ok(again)
    assert f"Generated pages: {len(GENERATED)} from .cache/pages, 0 rendered" in again.stderr
    assert {rel: site_page(project, rel) for rel in GENERATED} == fresh
    css = (project / "site/assets/stylesheets").glob("jupyter-*.css")
    assert [p.stat().st_size > 100_000 for p in css] == [True]  # the notebook stylesheet is still written

    mark_entries(project)
    ok(build(project))
    assert all(MARK in site_page(project, rel) for rel in GENERATED)  # served from the cache

    # A module changes: its page only is rendered again.
    (project / "spaces_code/unused.py").write_text('"""Imported by nobody."""\n\nVALUE = 2\n', encoding="utf-8")
    ok(build(project))
    assert MARK not in site_page(project, "code/unused/index.html")
    assert "VALUE" in site_page(project, "code/unused/index.html")
    assert MARK in site_page(project, "code/util/index.html")

    # The configuration changes (the site's name is in every page's header): all rendered again.
    mark_entries(project)
    (project / "mkdocs.yml").write_text(MKDOCS_YML.replace("site_name: Engine test", "site_name: Renamed"),
                                        encoding="utf-8")
    ok(build(project))
    for rel in GENERATED:
        assert MARK not in site_page(project, rel) and "Renamed" in site_page(project, rel), rel

    # A page of the navigation changes its source: the navigation may show it, all rendered again.
    mark_entries(project)
    (project / "docs/index.md").write_text("# Home, edited\n", encoding="utf-8")
    ok(build(project))
    assert not any(MARK in site_page(project, rel) for rel in GENERATED)

    # A snippet's output changes: the notebook page shows it, rendered again; module pages are kept.
    mark_entries(project)
    hello = project / "snippets/demo/hello.py"
    hello.write_text(hello.read_text(encoding="utf-8").replace("double(21)", "double(4)"), encoding="utf-8")
    ok(build(project))
    notebook = site_page(project, "notebooks/demo/index.html")
    assert MARK not in notebook and "double(4) = 8" in notebook
    assert MARK in site_page(project, "code/waves/index.html")


def test_a_build_that_warns_stores_no_page(tmp_path):
    project = make_project(tmp_path / "project")
    (project / "docs/about.md").write_text("# About\n\n[a broken link](missing.md)\n", encoding="utf-8")
    proc = build(project, "--no-strict")
    ok(proc)
    assert "missing.md" in proc.stderr  # MkDocs warned about the link
    assert entries(project) == []
    (project / "docs/about.md").write_text("# About\n", encoding="utf-8")
    ok(build(project))
    assert len(entries(project)) == len(GENERATED)


def test_page_cache_false_renders_every_page_and_stores_none(tmp_path):
    off = MKDOCS_YML.replace(SPACES_PLUGIN, SPACES_PLUGIN + "      page_cache: false\n")
    assert off != MKDOCS_YML
    project = make_project(tmp_path / "project", mkdocs_yml=off)
    ok(build(project))
    proc = build(project)
    ok(proc)
    assert entries(project) == [] and "Generated pages:" not in proc.stderr
    assert "VALUE" in site_page(project, "code/unused/index.html")
