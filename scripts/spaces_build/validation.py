"""Check every article, snippet, module and test of the archive; list all problems in one run.

    spaces validate [--root DIR]

Run by every build before anything executes (the ``spaces`` plugin), by the test suite and by CI. Each problem is
printed as ``path:line: what is wrong — how to fix it``; the exit status is 1 when there is any.

What is checked:

- posts (``docs/posts/*.md``): the front matter parses as YAML and has ``title``, ``date``
  (YYYY-MM-DD), ``slug`` (the file name), one category and tags from ``taxonomy.yml``, ``source``,
  ``license`` and known ``authors``; slugs and dates are unique; every ``--8<--`` include points at an
  existing file; no raw ``<script>``, ``<iframe>``/``<object>``/``<embed>``, inline event handlers
  (``onerror=`` …) or ``javascript:`` links in the Markdown;
- snippets (``snippets/<slug>/*.py``): belong to an existing post, are shown on it, parse, and import
  ``spaces_code``;
- modules (``spaces_code/*.py``): cite their article (its kexue.fm URL, or its title when the address is
  unknown) and are imported by at least one test;
- tests (``tests/test_*.py``): every test function asserts something;
- nothing still carries the scaffold marker that ``spaces new`` writes.
"""
from __future__ import annotations

import ast
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import parsing

SCAFFOLD_MARK = "SPACES-SCAFFOLD"
REQUIRED = ("title", "date", "slug", "categories", "tags", "source", "license", "authors")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
HOSTILE = (
    (re.compile(r"<\s*(script|iframe|object|embed)\b", re.I),
     "raw <{0}> is not allowed in an article — show code in a fenced ``` block instead"),
    (re.compile(r"<[a-z][^>]*\s(on[a-z]+)\s*=", re.I),
     "inline event handler {0}= is not allowed — remove the attribute"),
    (re.compile(r"(javascript|vbscript)\s*:", re.I),
     "{0}: links are not allowed — link to an http(s) address"),
)
# modules that are infrastructure, not an article's companion
INFRA_MODULES = {"__init__", "runtime", "corpus", "randomness"}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _load_yaml(path: Path, problems: list[Problem], root: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        problems.append(Problem(_rel(path, root), 1, "file is missing — restore it from git"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", 0) + 1
        problems.append(Problem(_rel(path, root), line, f"invalid YAML ({e.problem if hasattr(e, 'problem') else e})"))
    return {}


def check_posts(root: Path, taxonomy: dict, authors: set[str], problems: list[Problem]) -> dict[str, dict]:
    posts: dict[str, dict] = {}
    seen_slugs: dict[str, str] = {}
    seen_dates: dict[str, str] = {}
    categories = set(taxonomy.get("categories") or [])
    tags = set(taxonomy.get("tags") or [])
    for path in sorted((root / "docs" / "posts").glob("*.md")):
        rel = _rel(path, root)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        fm = parsing.front_matter(text)
        body_start = fm.body_line
        if not fm.present:
            problems.append(Problem(rel, 1, "no YAML front matter — start the file with a '---' block "
                                            "(see CONTRIBUTING.md)"))
            continue
        if fm.error is not None:
            what = getattr(fm.error, "problem", None) or str(fm.error).splitlines()[0]
            problems.append(Problem(rel, fm.error_line, f"front matter is not valid YAML ({what}) — fix the "
                                                        "syntax (quote titles that contain ':' or '#')"))
            # Still known by its file name and raw key lines, so that its snippets and module are not
            # reported as orphans too: one mistake, one problem.
            posts[path.stem] = {"meta": _raw_keys(fm.text), "text": text, "rel": rel}
            continue
        if not fm.mapping:
            problems.append(Problem(rel, 2, "front matter must be a mapping of keys to values"))
            continue
        meta = fm.data
        line_of = fm.line_of

        for key in REQUIRED:
            if key not in meta or meta[key] in (None, "", []):
                problems.append(Problem(rel, 1, f"front matter lacks '{key}' — add it (see CONTRIBUTING.md)"))
        slug = meta.get("slug")
        if slug is not None:
            if not isinstance(slug, str) or not SLUG_RE.match(slug):
                problems.append(Problem(rel, line_of("slug"), f"slug {slug!r} must be lower-case words "
                                                              "joined by '-'"))
            else:
                if slug != path.stem:
                    problems.append(Problem(rel, line_of("slug"), f"slug '{slug}' differs from the file "
                                                                  f"name — rename the file to {slug}.md"))
                if slug in seen_slugs:
                    problems.append(Problem(rel, line_of("slug"), f"duplicate slug '{slug}' (also in "
                                                                  f"{seen_slugs[slug]}) — choose another"))
                else:
                    seen_slugs[slug] = rel
        date = meta.get("date")
        if date is not None:
            if isinstance(date, dt.datetime):
                date = date.date()
            if not isinstance(date, dt.date):
                problems.append(Problem(rel, line_of("date"), f"date {date!r} must be YYYY-MM-DD, unquoted"))
            elif str(date) in seen_dates:
                problems.append(Problem(rel, line_of("date"), f"duplicate date {date} (also "
                                                              f"{seen_dates[str(date)]}) — check the date"))
            else:
                seen_dates[str(date)] = rel
        cats = meta.get("categories")
        if cats is not None:
            if not isinstance(cats, list) or len(cats) != 1:
                problems.append(Problem(rel, line_of("categories"), "categories must be a list of exactly one"))
            else:
                for c in cats:
                    if c not in categories:
                        problems.append(Problem(rel, line_of("categories", c), f"unknown category '{c}' — use "
                                                f"one of {sorted(categories)} or add it to taxonomy.yml"))
        post_tags = meta.get("tags")
        if post_tags is not None:
            if not isinstance(post_tags, list):
                problems.append(Problem(rel, line_of("tags"), "tags must be a list"))
            else:
                for t in post_tags:
                    if t not in tags:
                        problems.append(Problem(rel, line_of("tags", t), f"unknown tag '{t}' — add it to "
                                                "taxonomy.yml (tags:) or use an existing tag"))
        src = meta.get("source")
        if src is not None and not (isinstance(src, str) and src.startswith("https://kexue.fm/")):
            problems.append(Problem(rel, line_of("source"), f"source {src!r} must be the article's "
                                                            "https://kexue.fm/ address"))
        for a in meta.get("authors") or []:
            if a not in authors:
                problems.append(Problem(rel, line_of("authors", a), f"unknown author '{a}' — add it to "
                                                                 "docs/.authors.yml"))
        for number, line in enumerate(lines[body_start - 1:], start=body_start):
            m = parsing.INCLUDE.match(line)
            if m and not (root / m.group("path")).is_file():
                problems.append(Problem(rel, number, f"snippet include '{m.group('path')}' points at no file — "
                                                     "create it or fix the path"))
        for number, line in parsing.outside_code(lines, body_start):
            if parsing.FENCE_LINE.match(line):
                continue
            for pattern, message in HOSTILE:
                hit = pattern.search(line)
                if hit:
                    problems.append(Problem(rel, number, message.format(hit.group(1).lower())))
        posts[path.stem] = {"meta": meta, "text": text, "rel": rel}
    return posts


def _raw_keys(fm_text: str) -> dict:
    """``title`` and ``source`` read line by line from front matter that is not valid YAML."""
    found = {}
    for line in fm_text.splitlines():
        m = re.match(r"^(title|source)\s*:\s*(.+?)\s*$", line)
        if m:
            found[m.group(1)] = m.group(2).strip("'\"")
    return found


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _parse(path: Path, root: Path, problems: list[Problem]) -> ast.AST | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as e:
        problems.append(Problem(_rel(path, root), e.lineno or 1, f"syntax error: {e.msg}"))
        return None


def check_snippets(root: Path, posts: dict[str, dict], problems: list[Problem]) -> None:
    for path in sorted((root / "snippets").glob("**/*.py")):
        rel = _rel(path, root)
        slug = path.relative_to(root / "snippets").parts[0]
        if slug not in posts:
            problems.append(Problem(rel, 1, f"no post docs/posts/{slug}.md for this snippet folder — "
                                            "name the folder after the article's slug"))
        elif f'"{rel}"' not in posts[slug]["text"] and f"'{rel}'" not in posts[slug]["text"]:
            problems.append(Problem(rel, 1, f"snippet is not shown on its page — add "
                                            f'--8<-- "{rel}" in a ```python block of docs/posts/{slug}.md'))
        tree = _parse(path, root, problems)
        if tree is not None and not any(n.split(".")[0] == "spaces_code" for n in _imports(tree)):
            problems.append(Problem(rel, 1, "snippet does not import spaces_code — put the code it shows "
                                            "in a tested module and import it"))


def check_modules_and_tests(root: Path, posts: dict[str, dict], problems: list[Problem]) -> None:
    test_imports: set[str] = set()
    for path in sorted((root / "tests").glob("test_*.py")):
        tree = _parse(path, root, problems)
        if tree is None:
            continue
        test_imports |= _imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                if not _asserts(node):
                    problems.append(Problem(_rel(path, root), node.lineno, f"test '{node.name}' asserts "
                                    "nothing — assert a property of the mathematics (see CONTRIBUTING.md, code conventions)"))
    sources = {p["meta"].get("source") for p in posts.values()}
    titles = {p["meta"].get("title") for p in posts.values()}
    for path in sorted((root / "spaces_code").glob("*.py")):
        if path.stem in INFRA_MODULES:
            continue
        rel = _rel(path, root)
        tree = _parse(path, root, problems)
        doc = (ast.get_docstring(tree) or "") if tree is not None else ""
        cited = any(u and u != "https://kexue.fm/" and u in doc for u in sources) or \
            any(t and t in doc for t in titles)
        if not cited:
            problems.append(Problem(rel, 1, "module docstring does not cite its article — give the "
                                            "article's title and kexue.fm URL as in the post's front matter"))
        name = f"spaces_code.{path.stem}"
        if not any(i == name or i.startswith(name + ".") for i in test_imports):
            problems.append(Problem(rel, 1, f"no test imports {name} — add tests/test_{path.stem}.py"))


def _asserts(func: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if re.search(r"assert|raises|warns|allclose|approx|close|fail", name, re.I):
                return True
    return False


def check_scaffold(root: Path, problems: list[Problem]) -> None:
    for folder, pattern in (("docs", "**/*.md"), ("snippets", "**/*.py"), ("spaces_code", "*.py"),
                            ("tests", "*.py")):
        for path in sorted((root / folder).glob(pattern)):
            if path.name == "validate.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if SCAFFOLD_MARK in line:
                    problems.append(Problem(_rel(path, root), number, "scaffold placeholder left — replace "
                                            f"it with real content and delete the {SCAFFOLD_MARK} line"))


def validate(root: Path) -> list[Problem]:
    problems: list[Problem] = []
    taxonomy = _load_yaml(root / "taxonomy.yml", problems, root)
    authors = set((_load_yaml(root / "docs" / ".authors.yml", problems, root).get("authors") or {}))
    posts = check_posts(root, taxonomy, authors, problems)
    check_snippets(root, posts, problems)
    check_modules_and_tests(root, posts, problems)
    check_scaffold(root, problems)
    return problems
