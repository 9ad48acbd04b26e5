"""spaces validate (spaces_build.validation): each kind of bad or hostile input is named with its file, line and fix.

Every test copies the parts of the project validation reads into a temporary folder, injects one
fault, and asserts the exact outcome. The real tree must validate cleanly.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from spaces_build import validation as validate  # noqa: E402

POST = "docs/posts/flow-nice.md"


PARTS = ("docs", "snippets", "spaces_code", "tests", "taxonomy.yml")  # what validation reads


def _copy(src: Path, dest: Path) -> Path:
    for name in PARTS:
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(src / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, set[str]]:
    """One copy of the live tree, validated once: its problems are every test's baseline (a test's
    project is a copy of this copy, so the baseline is exact even while others edit the tree)."""
    root = _copy(ROOT, tmp_path_factory.mktemp("validate") / "pristine")
    return root, {str(p) for p in validate.validate(root)}


@pytest.fixture
def project(pristine, tmp_path: Path) -> Path:
    root, baseline = pristine
    BASELINE[_copy(root, tmp_path)] = baseline
    return tmp_path


BASELINE: dict[Path, set[str]] = {}


def messages(root: Path) -> list[str]:
    """The problems the injected fault added (the copy's own state is the baseline)."""
    return [str(p) for p in validate.validate(root) if str(p) not in BASELINE.get(root, set())]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture drift: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_real_tree_is_valid():
    assert messages(ROOT) == []


def test_malformed_yaml_names_file_and_line(project):
    edit(project / POST, "slug: flow-nice", "slug: [flow-nice")
    out = [m for m in messages(project) if m.startswith(f"{POST}:")]
    assert len(out) == 1 and "not valid YAML" in out[0], out


@pytest.mark.parametrize("key", ["title", "date"])
def test_missing_required_key(project, key):
    text = (project / POST).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key}:")]
    (project / POST).write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert any(m.startswith(POST) and f"lacks '{key}'" in m for m in messages(project))


def test_unknown_category_and_tag_are_named(project):
    edit(project / POST, "- 信息时代", "- 不存在的分类")
    edit(project / POST, "- flow\n", "- no-such-tag\n")
    out = messages(project)
    assert any("unknown category '不存在的分类'" in m and m.startswith(POST) for m in out)
    assert any("unknown tag 'no-such-tag'" in m and "taxonomy.yml" in m for m in out)


def test_duplicate_slug_names_both_files(project):
    copy = project / "docs/posts/flow-nice-copy.md"
    shutil.copy(project / POST, copy)
    edit(copy, "date: 2018-08-11", "date: 2018-08-12")
    out = messages(project)
    assert any("flow-nice-copy.md" in m and "differs from the file name" in m for m in out)
    edit(copy, "slug: flow-nice", "slug: flow-nice-copy")
    edit(project / POST, "slug: flow-nice", "slug: flow-nice-copy")
    out = messages(project)
    assert any("duplicate slug 'flow-nice-copy'" in m for m in out)


def test_missing_snippet_include(project):
    with (project / POST).open("a", encoding="utf-8") as f:
        f.write('\n```python\n--8<-- "snippets/flow-nice/does_not_exist.py"\n```\n')
    n = len((project / POST).read_text(encoding="utf-8").splitlines()) - 1
    out = messages(project)
    assert f"{POST}:{n}: snippet include 'snippets/flow-nice/does_not_exist.py' points at no file" \
        in "\n".join(out)


@pytest.mark.parametrize("payload, needle", [
    ("<script>alert(1)</script>", "raw <script>"),
    ('<img src="x.png" onerror="alert(1)">', "onerror="),
    ("[点我](javascript:alert(1))", "javascript: links"),
])
def test_hostile_markdown_is_refused(project, payload, needle):
    with (project / POST).open("a", encoding="utf-8") as f:
        f.write(f"\n{payload}\n")
    out = messages(project)
    assert any(m.startswith(POST) and needle in m for m in out), out


def test_code_blocks_may_show_html(project):
    with (project / POST).open("a", encoding="utf-8") as f:
        f.write('\n```html\n<script>alert(1)</script>\n```\n')
    assert messages(project) == []


def test_snippet_must_import_spaces_code(project):
    snippet = next((project / "snippets").glob("*/*.py"))
    snippet.write_text("print('hello')\n", encoding="utf-8")
    out = messages(project)
    assert any("does not import spaces_code" in m for m in out)


def test_all_problems_listed_in_one_run(project):
    edit(project / POST, "- 信息时代", "- 不存在的分类")
    with (project / "docs/posts/gradient-clipping.md").open("a", encoding="utf-8") as f:
        f.write("\n<script>x</script>\n")
    result = subprocess.run([sys.executable, str(ROOT / "scripts/validate.py"), "--root", str(project)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "不存在的分类" in result.stderr and "gradient-clipping.md" in result.stderr
    assert f"{len(BASELINE[project]) + 2} problem(s) found" in result.stderr


def test_scaffold_does_not_validate_until_written(project):
    result = subprocess.run([sys.executable, str(ROOT / "scripts/new_article.py"), "my-new-article",
                             "--title", "新文章：测试", "--date", "2030-01-02", "--tags", "attention",
                             "--source", "https://kexue.fm/archives/99999", "--root", str(project)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = messages(project)
    assert out, "a fresh scaffold must not validate"
    assert all(validate.SCAFFOLD_MARK in m or "scaffold" in m for m in out), out
    for rel in ("docs/posts/my-new-article.md", "snippets/my-new-article/demo.py",
                "spaces_code/my_new_article.py", "tests/test_my_new_article.py"):
        assert any(m.startswith(rel) for m in out), rel
    # the scaffolded test fails on purpose: it is no placeholder that passes
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(project / "tests/test_my_new_article.py"), "-k", "cpu"],
                         capture_output=True, text=True, cwd=project,
                         env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1 and "write a real test" in run.stdout
    # refuses to overwrite
    again = subprocess.run([sys.executable, str(ROOT / "scripts/new_article.py"), "my-new-article",
                            "--title", "x", "--date", "2030-01-03", "--root", str(project)],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_test_without_assertion_is_refused(project):
    (project / "tests/test_empty.py").write_text("def test_nothing():\n    x = 1\n", encoding="utf-8")
    assert "tests/test_empty.py:1: test 'test_nothing' asserts nothing" in "\n".join(messages(project))
