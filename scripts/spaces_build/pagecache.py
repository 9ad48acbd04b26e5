"""The finished HTML of the pages this build generates (module pages, notebook pages), reused while
nothing they show has changed.

MkDocs renders every page on every build and keeps no output between builds; mkdocs-jupyter's own
cache covers only the notebook's conversion, not the theme around it. A generated page costs 5-10 ms
of Markdown, mkdocs-jupyter, Material's template and search handling per build, and the 86 of them
were most of what a warm build adds to a plain ``mkdocs build``. This cache is the only place that
keeps them: an entry is the page's final HTML (after every plugin's ``on_post_page``), its title,
table of contents and anchor ids, under a key of everything the HTML is made from:

- the page: its URL, its generated Markdown or notebook bytes, the highlighted source it embeds;
- the site around it (:func:`site_key`, once per build): the resolved configuration (``!ENV`` values
  included), the navigation's titles and URLs, the sources of the pages in the navigation, the URL of
  every file (links and figures), the theme's override files, the versions of MkDocs, the theme, the
  plugins and Markdown extensions, and this package's own source.

A hit replaces the page's ``render`` for this build only (as mkdocs-jupyter replaces it for
notebooks) and gives it the template :data:`TEMPLATE`, which prints the stored HTML as it is; the
page's own content is left empty, so other plugins have nothing to redo.
Entries are stored only by a build that logged no warning, so a page that rendered with a broken
link is rendered (and warned about) again next time. Nothing here changes a source file.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from .cache import atomic_write, prune_unused

TEMPLATE = "spaces-rendered.html"  # given to the theme's Jinja environment in the plugin's on_env
# The stored page is an attribute of its own, not page.content: plugins that edit every page's
# content (Material's search drops data-search-* attributes) would otherwise scan 50 kB per page.
TEMPLATE_SOURCE = "{{ page.spaces_rendered }}"
FOLDER = "pages"  # under .cache/
VERSIONED = ("mkdocs", "mkdocs-material", "mkdocs-jupyter", "nbconvert", "nbformat", "markdown",
             "pymdown-extensions", "pygments", "jinja2", "mkdocs-rss-plugin")
_PACKAGE = Path(__file__).resolve().parent


def _stable(value, depth: int = 0):
    """``value`` as JSON-ready data whose text is the same in every process (no addresses)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):  # Path, and MkDocs' !relative placeholders
        try:
            return os.fspath(value)
        except Exception:  # noqa: BLE001 - a placeholder that cannot resolve here
            return type(value).__qualname__
    if depth > 12:  # deeper than any configuration goes: a cycle
        return type(value).__qualname__
    if isinstance(value, functools.partial):  # toc's slugify: the function and its arguments
        return ["partial", _stable(value.func, depth + 1), _stable(value.args, depth + 1),
                _stable(value.keywords, depth + 1)]
    if isinstance(value, dict) or hasattr(value, "items"):
        try:
            items = list(value.items())
        except Exception:  # noqa: BLE001 - an object that only looks like a mapping
            return type(value).__qualname__
        return {str(k): _stable(v, depth + 1) for k, v in sorted(items, key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_stable(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    config = getattr(value, "config", None)  # a plugin or Markdown extension: its options
    if config is not None and hasattr(config, "items"):
        return [type(value).__qualname__, _stable(config, depth + 1)]
    return getattr(value, "__qualname__", None) or type(value).__qualname__


def _nav(items) -> list:
    out = []
    for item in items or []:
        out.append([type(item).__name__, getattr(item, "title", None), getattr(item, "url", None),
                    _nav(getattr(item, "children", None))])
    return out


def _nav_sources(items, found: list) -> list:
    for item in items or []:
        file = getattr(item, "file", None)
        if file is not None:
            try:
                found.append([file.src_uri, hashlib.sha256(file.content_bytes).hexdigest()])
            except (OSError, TypeError, ValueError):
                found.append([file.src_uri, None])
        _nav_sources(getattr(item, "children", None), found)
    return found


def _folder_digest(folder: str | None, suffix: str = "") -> list:
    if not folder or not os.path.isdir(folder):
        return []
    out = []
    for dirpath, dirnames, names in sorted(os.walk(folder)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in sorted(n for n in names if n.endswith(suffix) and not n.endswith(".pyc")):
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out.append([os.path.relpath(path, folder), hashlib.sha256(fh.read()).hexdigest()])
    return out


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def site_key(config, nav, files) -> str:
    """What every generated page shares: configuration, navigation, file URLs, theme, versions."""
    settings = {k: v for k, v in config.items() if k not in ("site_dir", "nav")}
    theme = config.theme
    parts = [
        _stable(settings),
        getattr(theme, "name", None),
        [str(d) for d in getattr(theme, "dirs", [])],
        _nav(nav.items),
        _nav_sources(nav.items, []),
        sorted((f.src_uri, f.url) for f in files),
        _folder_digest(getattr(theme, "custom_dir", None)),
        [(name, _version(name)) for name in VERSIONED],
        _folder_digest(str(_PACKAGE)),  # the engine, with mathrender's worker.js
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def page_key(site: str, page, inputs: list) -> str:
    """``site`` (:func:`site_key`) with the page's URL and what it is made of (``inputs``: strings or bytes)."""
    h = hashlib.sha256(f"{site}\n{page.file.src_uri}\n{page.url}\n".encode())
    for part in inputs:
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


class PageCache:
    """``.cache/pages/<key>.json``. Reads are free of side effects; writes are staged and committed
    together by :meth:`commit` (the plugin calls it after a build that logged no warning)."""

    def __init__(self, root: Path):
        self.folder = root / ".cache" / FOLDER
        self.staged: dict[str, dict] = {}
        self.staged_assets: dict[str, str] = {}
        self.used: set[str] = set()

    def load(self, key: str) -> dict | None:
        try:
            entry = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing, or torn by a build killed mid-write: rendered again
        if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
            return None
        self.used.add(key)
        return entry

    def stage(self, key: str, page, output: str, stylesheets: dict[str, str] | None = None) -> None:
        """Keep ``output`` for :meth:`commit`; ``stylesheets``: site path -> text of the shared
        stylesheets the page links (written by the plugin, not by the page), stored once each."""
        self.staged[key] = {"output": output, "title": page.title, "toc": _toc(page.toc),
                            "anchors": sorted(page.present_anchor_ids or ()),
                            "stylesheets": sorted(stylesheets or ())}
        self.staged_assets.update(stylesheets or {})

    def asset(self, uri: str) -> str | None:
        """A stylesheet a stored page links (``uri``: its site path), or ``None``."""
        try:
            return (self.folder / "assets" / _asset_name(uri)).read_text(encoding="utf-8")
        except OSError:
            return None

    def commit(self) -> int:
        """Write the staged entries (``cache.atomic_write``: a reader sees a whole file or none)."""
        if not self.staged:
            return 0
        for uri, text in self.staged_assets.items():  # before the entries that link them
            atomic_write(self.folder / "assets" / _asset_name(uri), text.encode("utf-8"), durable=False)
        for key, entry in self.staged.items():
            atomic_write(self.folder / f"{key}.json", json.dumps(entry, ensure_ascii=False).encode("utf-8"),
                         durable=False)  # a lost entry is rendered again
            self.used.add(key)
        count, self.staged, self.staged_assets = len(self.staged), {}, {}
        return count

    def prune(self) -> None:
        """Drop the entries no build used for an hour (``cache.prune_unused``)."""
        prune_unused(self.folder, "*.json", {self.folder / f"{key}.json" for key in self.used})


def _asset_name(uri: str) -> str:
    """A stored stylesheet's file name: its site path's own name, content-addressed already."""
    return uri.rsplit("/", 1)[-1]


def _toc(toc) -> list:
    return [[link.title, link.id, link.level, _toc(link.children)] for link in (toc or [])]


def restore_toc(data: list):
    from mkdocs.structure.toc import AnchorLink, TableOfContents

    def links(items):
        out = []
        for title, anchor, level, children in items:
            link = AnchorLink(title, anchor, level)
            link.children = links(children)
            out.append(link)
        return out

    return TableOfContents(links(data))


def rendered(entry: dict):
    """A ``render`` for one page, in place of Markdown or mkdocs-jupyter: the stored page."""

    def render(self, config, files) -> None:
        self.content = ""
        self.spaces_rendered = entry["output"]
        self.toc = restore_toc(entry.get("toc") or [])
        if entry.get("title") is not None:
            self.title = entry["title"]
        self.present_anchor_ids = set(entry.get("anchors") or ())
        self.meta["template"] = TEMPLATE

    return render
