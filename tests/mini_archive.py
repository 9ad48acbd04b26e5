"""A small, real copy of the project for build tests (validation, kill -9, reproducibility, the
contributor path): the real ``mkdocs.yml`` (its ``spaces`` plugins come from the installed package
``spaces_build``), scripts, taxonomy and overrides, and three real posts with their snippets, modules
and tests:

- ``exp-even-taylor-positive``: a snippet that draws a figure;
- ``multiprocess-speedup``: the timing-dependent word-count snippet (``# spaces: timing-dependent``);
- ``mitchell-approximation``: a second figure.

A cold build of it takes seconds, not minutes, and it validates cleanly.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

POSTS = ("exp-even-taylor-positive", "multiprocess-speedup", "mitchell-approximation")
MODULES = ("__init__", "runtime", "corpus", "taylor_softmax", "parallel_count", "mitchell")
TESTS = ("conftest.py", "test_taylor_softmax.py", "test_parallel_count.py", "test_mitchell.py")
FILES = ("mkdocs.yml", "taxonomy.yml", "pyproject.toml", "CONTRIBUTING.md", "Makefile",
         "docs/index.md", "docs/tags.md", "docs/about.md", "docs/.authors.yml")
FOLDERS = ("overrides", "docs/assets", "docs/javascripts", "docs/stylesheets")
TIMING_SNIPPET = "snippets/multiprocess-speedup/word_count.py"
FIGURE_SNIPPETS = ("snippets/exp-even-taylor-positive/even_taylor.py",
                   "snippets/mitchell-approximation/mitchell_demo.py")

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def make(dest: Path) -> Path:
    """Create the mini archive in ``dest`` (which must not exist) and return it."""
    dest.mkdir(parents=True)
    for rel in FILES:
        _copy(REPO / rel, dest / rel)
    for rel in FOLDERS:
        shutil.copytree(REPO / rel, dest / rel, ignore=_IGNORE)
    for path in (REPO / "scripts").glob("*.py"):
        _copy(path, dest / "scripts" / path.name)
    for slug in POSTS:
        _copy(REPO / "docs" / "posts" / f"{slug}.md", dest / "docs" / "posts" / f"{slug}.md")
        shutil.copytree(REPO / "snippets" / slug, dest / "snippets" / slug, ignore=_IGNORE)
    for name in MODULES:
        _copy(REPO / "spaces_code" / f"{name}.py", dest / "spaces_code" / f"{name}.py")
    for name in TESTS:
        _copy(REPO / "tests" / name, dest / "tests" / name)
    return dest


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


def build_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spaces_build.cli", "build", "--jobs", "2", "--device", "cpu", *args]


def build(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``spaces build --jobs 2 --device cpu ARGS`` in ``project``, as a contributor runs it."""
    return subprocess.run(build_cmd(*args), cwd=project, env=clean_env(), capture_output=True,
                          text=True, timeout=timeout)


def tree_state(root: Path, skip=(".cache", "site", "__pycache__", ".pytest_cache")) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (minus build outputs): equal states, untouched tree."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            state[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state
