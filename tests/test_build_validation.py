"""The build validates first: a broken article fails ``spaces build`` (and a plain ``mkdocs build``)
with every problem named as ``path:line: message``, before any snippet runs.

``tests/test_validate.py`` checks the validator itself on each kind of fault; here each fault is
injected into a temporary mini archive (``tests/mini_archive.py``: the real mkdocs.yml, plugins and
taxonomy with three real posts) and the BUILD is run as a contributor runs it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mini_archive

pytestmark = pytest.mark.slow

MITCHELL = "docs/posts/mitchell-approximation.md"
TAYLOR = "docs/posts/exp-even-taylor-positive.md"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return mini_archive.make(tmp_path_factory.mktemp("validation") / "archive")


@pytest.fixture
def project(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "archive"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture drift: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def failed_build(project: Path, n_problems: int) -> str:
    """Build; assert it failed in validation with ``n_problems`` problems and ran nothing."""
    proc = mini_archive.build(project)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert f"Validation failed: {n_problems} problem(s); nothing was executed or built." in err, err
    assert "Snippets:" not in err  # the engine never started ...
    assert not (project / ".cache" / "snippets").exists()  # ... and cached nothing
    assert not (project / "site").exists()
    return err


def test_malformed_yaml_fails_the_build(project):
    edit(project / MITCHELL, "slug: mitchell-approximation", "slug: [mitchell-approximation")
    err = failed_build(project, 1)
    assert re.search(rf"^  {MITCHELL}:\d+: front matter is not valid YAML", err, re.M), err


@pytest.mark.parametrize("key", ["title", "date"])
def test_missing_title_or_date_fails_the_build(project, key):
    path = project / MITCHELL
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(ln for ln in lines if not ln.startswith(f"{key}:")), encoding="utf-8")
    err = failed_build(project, 1)
    assert f"  {MITCHELL}:1: front matter lacks '{key}' — add it" in err, err


def test_unknown_category_and_tag_fail_the_build(project):
    edit(project / TAYLOR, "- 数学研究", "- 不存在的分类")
    edit(project / TAYLOR, "- softmax\n", "- no-such-tag\n")
    err = failed_build(project, 2)
    assert f"  {TAYLOR}:6: unknown category '不存在的分类' — use one of" in err, err
    assert f"  {TAYLOR}:9: unknown tag 'no-such-tag' — add it to taxonomy.yml" in err, err


def test_duplicate_slug_fails_the_build(project):
    copy = project / "docs/posts/mitchell-copy.md"
    shutil.copy(project / MITCHELL, copy)
    edit(copy, "date: 2020-12-14", "date: 2020-12-15")
    err = failed_build(project, 2)
    assert ("  docs/posts/mitchell-copy.md:4: duplicate slug 'mitchell-approximation' "
            f"(also in {MITCHELL}) — choose another") in err, err
    assert "  docs/posts/mitchell-copy.md:4: slug 'mitchell-approximation' differs from the file name" in err


def test_include_of_a_missing_snippet_fails_the_build(project):
    edit(project / MITCHELL, '--8<-- "snippets/mitchell-approximation/mitchell_demo.py"\n```\n',
         '--8<-- "snippets/mitchell-approximation/mitchell_demo.py"\n```\n\n'
         '```python\n--8<-- "snippets/mitchell-approximation/no_such_file.py"\n```\n')
    err = failed_build(project, 1)
    assert (f"  {MITCHELL}:36: snippet include 'snippets/mitchell-approximation/no_such_file.py' "
            "points at no file — create it or fix the path") in err, err


def test_raw_script_in_an_article_fails_the_build(project):
    edit(project / MITCHELL, "<!-- more -->", '<!-- more -->\n\n<script>alert(1)</script>\n'
         '<img src="x.png" onerror="alert(2)">\n[click](javascript:alert(3))')
    err = failed_build(project, 3)
    assert "raw <script> is not allowed" in err and "inline event handler onerror= is not allowed" in err
    assert "javascript: links are not allowed" in err


def test_every_problem_is_listed_in_one_build(project):
    edit(project / MITCHELL, "slug: mitchell-approximation", "slug: [mitchell-approximation")
    edit(project / TAYLOR, "- softmax\n", "- no-such-tag\n")
    edit(project / "docs/posts/multiprocess-speedup.md", "title: ", "titel: ")
    err = failed_build(project, 3)
    listed = [line.strip() for line in err.splitlines() if line.startswith("  docs/posts/")]
    assert [line.split(":")[0] for line in listed] == [
        TAYLOR, MITCHELL, "docs/posts/multiprocess-speedup.md"], listed


def test_plain_mkdocs_build_validates_too(project):
    edit(project / TAYLOR, "- softmax\n", "- no-such-tag\n")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project,
                          env=mini_archive.clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"{TAYLOR}:9: unknown tag 'no-such-tag'" in proc.stderr
    assert not (project / ".cache" / "snippets").exists()


def test_previous_site_survives_a_failed_validation(project):
    """A failed validation leaves the last good site in place (MkDocs has not cleaned it yet)."""
    (project / "site").mkdir()
    (project / "site" / "index.html").write_text("last good build", encoding="utf-8")
    edit(project / TAYLOR, "- softmax\n", "- no-such-tag\n")
    proc = mini_archive.build(project)
    assert proc.returncode == 1
    assert (project / "site" / "index.html").read_text(encoding="utf-8") == "last good build"


def test_bad_formula_fails_a_plain_mkdocs_build(tmp_path):
    """spaces_build.mathrender under a real ``mkdocs build`` (no ``spaces`` plugin): a bad formula stops
    the build with file, line and formula."""
    import os

    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nmarkdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n"
        "  - spaces_build.mathrender:\n      cache_dir: !relative $config_dir/cache\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(mini_archive.REPO / "scripts"), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}

    def build(text: str, cwd: Path) -> subprocess.CompletedProcess:
        (tmp_path / "docs" / "index.md").write_text(text, encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    good = build("# T\n\nok $a$\n", cwd=tmp_path / "docs")
    assert good.returncode == 0, good.stderr[-3000:]
    assert "<mjx-container" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    # the cache sits next to mkdocs.yml (!relative $config_dir), not in the working directory
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1 and not (tmp_path / "docs" / "cache").exists()
    (tmp_path / "site" / "index.html").unlink()
    proc = build("---\ntitle: T\n---\n\n# T\n\nok $a$\n\nbad $\\frac{1}$\n", cwd=tmp_path)
    assert proc.returncode != 0
    assert "docs/index.md:9: MathJax cannot typeset \\frac{1}  —  " in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "site" / "index.html").exists()
