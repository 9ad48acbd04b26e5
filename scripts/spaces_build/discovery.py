"""Which snippets exist, and which pages include them.

A snippet is every ``snippets/**/*.py`` whose path has no part starting with ``_`` or ``.``, plus every
file a page includes as the whole body of a fenced block (``--8<-- "snippets/<slug>/<name>.py"``).
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from . import parsing
from .parsing import Include


@dataclasses.dataclass
class Snippet:
    rel: str  # "snippets/<slug>/<name>.py", always with forward slashes
    path: Path
    source: str
    sha256: str
    timing_dependent: bool
    pages: list[str] = dataclasses.field(default_factory=list)  # docs-relative pages including it
    page_files: list[str] = dataclasses.field(default_factory=list)  # the same, repository-relative

    @property
    def article(self) -> str:
        parts = self.rel.split("/")
        return parts[1] if len(parts) > 2 else ""

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1][:-3]


@dataclasses.dataclass
class Post:
    src_uri: str
    title: str
    slug: str
    source_url: str | None
    includes: list[Include]


def discover(root: Path, pages: dict[str, Path]) -> tuple[dict[str, Snippet], dict[str, Post]]:
    """Snippets and the posts that include them. ``pages`` maps a docs-relative ``.md`` path to its file."""
    posts: dict[str, Post] = {}
    wanted: dict[str, list[str]] = {}
    for src_uri, path in sorted(pages.items()):
        text = path.read_text(encoding="utf-8")
        includes = parsing.find_includes(text) if "8<" in text else []
        meta = parsing.front_matter(text).data if text.startswith("---") else {}
        slug = str(meta.get("slug") or Path(src_uri).stem)
        posts[src_uri] = Post(src_uri, str(meta.get("title") or slug), slug, meta.get("source"), includes)
        for inc in includes:
            wanted.setdefault(inc.snippet, []).append(src_uri)
    snippet_dir = root / "snippets"
    rels = set(wanted)
    if snippet_dir.is_dir():
        for path in snippet_dir.rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if not any(part.startswith(("_", ".")) for part in rel.split("/")[1:]):
                rels.add(rel)
    snippets = {}
    for rel in sorted(rels):
        path = root / rel
        if not path.is_file():
            continue  # pymdownx.snippets (check_paths) reports the missing include
        snippets[rel] = load_snippet(root, rel, wanted.get(rel, []), pages)
    return snippets, posts


def load_snippet(root: Path, rel: str, including: list[str] = (), pages: dict[str, Path] | None = None) -> Snippet:
    path = root / rel
    data = path.read_bytes()
    source = data.decode("utf-8", errors="replace")
    including = list(dict.fromkeys(including))
    return Snippet(rel, path, source, hashlib.sha256(data).hexdigest(), parsing.is_timing_dependent(source),
                   including, [_relative((pages or {})[p], root) for p in including])


def pages_of(docs_dir: Path) -> dict[str, Path]:
    """Every Markdown page of ``docs_dir`` (docs-relative path -> file): what MkDocs would see."""
    return {p.relative_to(docs_dir).as_posix(): p for p in sorted(docs_dir.rglob("*.md"))
            if not any(part.startswith(".") for part in p.relative_to(docs_dir).parts)}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
