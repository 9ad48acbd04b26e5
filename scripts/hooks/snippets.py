"""MkDocs hook: executed snippet outputs, module source pages, notebooks and the executions report.

Registered under ``hooks:`` in mkdocs.yml. On every build (``mkdocs build``, ``mkdocs serve``,
``scripts/build.py``) it

- validates the project first (``scripts/validate.py``, in ``on_config``): a broken article fails the
  build with every problem listed, before any snippet runs;
- runs the stale snippets (see ``scripts/engine.py``) before anything is rendered, so no page ever
  shows stale output; a failing snippet fails the build (``mkdocs serve`` shows the failure on the
  page instead);
- after each fenced block whose body is exactly ``--8<-- "snippets/<slug>/<name>.py"`` inserts the
  cached output (``<div class="snippet-output" data-snippet=...>``) — in memory, the Markdown files
  are never written;
- generates ``code/<module>.md`` for every module of ``spaces_code`` (with links to the articles whose
  snippets import it), ``notebooks/<slug>.ipynb`` per article (rendered by mkdocs-jupyter, linked
  from the article), ``executions.md`` and ``executions.json``.

Options come from the environment (``SPACES_JOBS``, ``SPACES_DEVICE``, ``SPACES_TIMEOUT``,
``SPACES_KEEP_GOING``), which ``scripts/build.py`` sets from its flags.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import posixpath
import re
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import jinja2
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.spaces.snippets")
# mkdocs-jupyter logs three INFO lines per notebook per build ("Cache hit", "Copied jupyter file"...).
logging.getLogger("mkdocs.plugins.mkdocs_jupyter").setLevel(logging.WARNING)


def _load(filename: str, name: str):
    """Import scripts/<filename> once per process under a name of our own (no sys.path changes)."""
    path = str(Path(__file__).resolve().parent.parent / filename)
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


engine = _load("engine.py", "spaces_engine")
render = _load("engine_render.py", "spaces_engine_render")

OUTPUT_MARK = "<!-- spaces-snippet-output {} -->"
NOTEBOOK_MARK = "<!-- spaces-notebook-link -->"
EXECUTIONS_MARK = "<!-- spaces-executions-table -->"
EXECUTIONS_PAGE = "executions.md"
CODE_DIR = "code"
NOTEBOOK_DIR = "notebooks"

_command = None  # "build" or "serve", from on_startup


class _State:
    """What one build learned, for the later events of the same build (reset by on_files)."""

    def __init__(self):
        self.build = None  # engine.BuildState
        self.root: Path | None = None
        self.page_snippets: dict[str, list[str]] = {}  # page src_uri -> snippet rels, marker order
        self.figure_uris: dict[str, list[str]] = {}  # snippet rel -> figure src_uris
        self.notebooks: dict[str, Path] = {}  # article slug -> notebook file under .cache/notebooks
        self.notebook_css: dict[str, str] = {}  # site path -> the stylesheet mkdocs-jupyter inlines
        self.code_fences: dict[str, str] = {}  # code page src_uri -> the fenced block of its source
        self.code_html: set[Path] = set()  # highlighted sources this build used (the rest is pruned)


state = _State()


def on_startup(command, dirty):
    global _command
    _command = command


@event_priority(90)  # first thing of every build: before any plugin reads a page, before any snippet runs
def on_config(config):
    """Validation (``scripts/validate.py``) before anything executes.

    ``mkdocs build`` and ``scripts/build.py`` fail with every problem listed as ``path:line: message``
    (malformed front matter, a missing title or date, an unknown category or tag, a duplicate slug,
    an include of a missing snippet, raw ``<script>`` ...); no snippet has run and the previous site
    is left as it was. ``mkdocs serve`` shows the same list as warnings and goes on, so that an
    article can be previewed while it is being written. A project without ``scripts/validate.py``
    (the engine's own test projects) is not validated.
    """
    validator_file = Path(__file__).resolve().parent.parent / "validate.py"
    if not validator_file.is_file():
        return config
    validator = _load("validate.py", "spaces_validate")
    root = Path(config.config_file_path).resolve().parent
    problems = _validate(validator, validator_file, root)
    if not problems:
        return config
    listing = "\n".join(f"  {p}" for p in problems)
    if _command == "serve" or _options_serve():
        log.warning(f"Validation: {len(problems)} problem(s) (the build will fail until they are "
                    f"fixed):\n{listing}")
        return config
    raise PluginError(f"Validation failed: {len(problems)} problem(s); nothing was executed or built. "
                      f"Fix them and build again (python scripts/validate.py checks without building):"
                      f"\n{listing}")


def _options_serve() -> bool:
    return os.environ.get("SPACES_SERVE", "") not in ("", "0", "false")


VALIDATED = "validated.json"


def _validate(validator, validator_file: Path, root: Path) -> list:
    """``validator.validate(root)``, skipped when nothing changed since a clean validation.

    Parsing every test and module costs ~0.3 s, the largest part of what a warm build adds to a plain
    ``mkdocs build``. The key is the size, times and inode of every file of the repository (the
    engine's ``repo_snapshot``, ~2 ms) with the validator's own source and the Python and PyYAML
    versions: any edit anywhere validates again. Only a clean result is remembered.
    """
    import yaml

    key = hashlib.sha256(json.dumps(
        [sorted(engine.repo_snapshot(root).items()), validator_file.read_text(encoding="utf-8"),
         sys.version, getattr(yaml, "__version__", "")]).encode()).hexdigest()
    memo = root / ".cache" / VALIDATED
    try:
        if json.loads(memo.read_text(encoding="utf-8")).get("key") == key:
            return []
    except (OSError, ValueError, AttributeError):
        pass
    problems = validator.validate(root)
    if not problems:
        engine.atomic_write(memo, json.dumps({"key": key}).encode())
    return problems


def on_pre_build(config):
    _drop_torn_jupyter_cache(config)
    _share_notebook_templates()


class _TemplateMemory(jinja2.BytecodeCache):
    """A Jinja bytecode cache in memory, shared by every nbconvert exporter of this process."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        data = self.code.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)  # Jinja checks the template's checksum: stale code is dropped

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _share_notebook_templates() -> None:
    """Compile nbconvert's templates once per process instead of once per notebook.

    mkdocs-jupyter makes a new exporter, hence a new Jinja environment, for every notebook it
    converts, and compiling the ~11 templates again was 85% of each conversion (~0.15 s of 0.18 s,
    the slowest step of a cold build: one notebook per article). Jinja's own bytecode cache, held in
    memory, gives the same HTML byte for byte. Without nbconvert (or if its internals move), nothing
    is changed.
    """
    try:
        from nbconvert.exporters.templateexporter import TemplateExporter
    except ImportError:
        return
    create = TemplateExporter.__dict__.get("_create_environment")
    if create is None or getattr(create, "spaces_shared", False):
        return
    memory = _TemplateMemory()

    def _create_environment(self):
        environment = create(self)
        environment.bytecode_cache = memory
        return environment

    _create_environment.spaces_shared = True
    TemplateExporter._create_environment = _create_environment


def _drop_torn_jupyter_cache(config) -> None:
    """mkdocs-jupyter writes its render cache non-atomically; after a build killed mid-write the
    next build would crash on the torn JSON. Each entry ends with its ``"title": ...}`` key, which
    cannot occur unescaped inside the content string: without it in the tail, the entry goes."""
    plugin = config.plugins.get("mkdocs-jupyter")
    if plugin is None or not plugin.config.get("cache"):
        return
    cache_dir = Path(plugin.config["cache_dir"])
    if not cache_dir.is_dir():
        return
    for path in cache_dir.glob("*.json"):
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                whole = b'"title": ' in fh.read()
        except OSError:
            continue
        if not whole:
            log.info(f"Removing a torn mkdocs-jupyter cache entry: {path}")
            path.unlink(missing_ok=True)


def _options():
    opts = engine.Options.from_env()
    if _command == "serve":
        opts.serve = True
    return opts


@event_priority(50)  # before mkdocs-jupyter's on_files, which must see the generated notebooks
def on_files(files: Files, config):
    global state
    state = _State()
    root = Path(config.config_file_path).resolve().parent
    state.root = root
    pages = {f.src_uri: Path(f.abs_src_path) for f in files.documentation_pages()
             if f.src_uri.endswith(".md") and f.abs_src_path and not f.generated_by}
    try:
        build = engine.run_build(root, pages, _options())
    except engine.EngineError as exc:
        raise PluginError(str(exc)) from None
    state.build = build
    cache = engine.Cache(root)

    # Figures: generated files backed by the content-addressed cache (copied, never re-rendered).
    for rel, record in build.records.items():
        if record.ok:
            uris = []
            for i, sha in enumerate(record.entry.get("figures", []), start=1):
                uri = render.figure_src_uri(rel, i)
                _add(files, File.generated(config, uri, abs_src_path=str(cache.figure_path(sha))))
                uris.append(uri)
            state.figure_uris[rel] = uris

    _add_code_pages(files, config, root, build)

    # Notebooks: the File now (mkdocs-jupyter wraps it next), the content in on_nav, once URLs are final.
    nb_dir = root / ".cache" / NOTEBOOK_DIR
    for article in build.articles():
        path = nb_dir / f"{article}.ipynb"
        if not path.exists():
            engine.atomic_write(path, b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
        # A plain File rooted in .cache/ (not File.generated): mkdocs-jupyter's wrapper reads the
        # notebook through src_dir, which generated files do not have.
        _add(files, File(f"{NOTEBOOK_DIR}/{article}.ipynb", src_dir=str(path.parent.parent),
                         dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))
        state.notebooks[article] = path

    _add(files, File.generated(config, EXECUTIONS_PAGE,
                               content=f"# 代码运行记录\n\n本站每段代码都由构建在独立进程中实际运行；"
                                       f"代码及其导入的模块都没有改动时，直接使用缓存的结果。"
                                       f"机器可读的版本：[executions.json](executions.json)。\n\n"
                                       f"{EXECUTIONS_MARK}\n"))
    _add(files, File.generated(config, "executions.json", content=render.executions_json(build)))
    return files


def _add(files: Files, file: File) -> None:
    existing = files.get_file_from_path(file.src_uri)
    if existing is not None:
        files.remove(existing)
    files.append(file)


def _add_code_pages(files: Files, config, root: Path, build) -> None:
    """``code/<module>.md`` per module of spaces_code, linking back to the articles using it."""
    package = root / "spaces_code"
    if not package.is_dir():
        return
    users: dict[str, list] = {}
    for record in build.records.values():
        if not record.ok:
            continue
        posts = [build.posts[p] for p in record.snippet.pages]
        if not posts:
            post = build.post_for_article(record.snippet.article)
            posts = [post] if post else []
        for kind, rel, _ in record.entry.get("deps", []):
            if kind == "file" and rel.startswith("spaces_code/") and rel.endswith(".py"):
                bucket = users.setdefault(rel, [])
                bucket += [p for p in posts if p not in bucket]
    modules = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        uri = f"{CODE_DIR}/{rel[len('spaces_code/'):-3]}.md"
        posts = sorted(users.get(rel, []), key=lambda p: p.src_uri)
        source = path.read_text(encoding="utf-8")
        _add(files, File.generated(config, uri, content=render.code_page(rel, source, posts)))
        state.code_fences[uri] = render.code_fence(rel, source)
        modules.append((rel, uri))
    _add(files, File.generated(config, f"{CODE_DIR}/index.md", content=render.code_index_page(modules, users)))


@event_priority(-90)  # after the blog plugin has given posts their final URLs
def on_nav(nav, config, files):
    build = state.build
    if build is None:
        return nav
    cache = engine.Cache(state.root)
    by_article = build.articles()
    for article, path in state.notebooks.items():
        post = build.post_for_article(article)
        url = None
        if post is not None and config.site_url:
            post_file = files.get_file_from_path(post.src_uri)
            if post_file is not None:
                url = urljoin(config.site_url, post_file.url)
        records = by_article[article]
        # Rewrite only when something it shows changed: untouched bytes also keep mkdocs-jupyter's
        # own render cache warm.
        fingerprint = render.notebook_fingerprint(article, post, records, url)
        key_file = path.with_suffix(".key")
        try:
            if path.exists() and key_file.read_text() == fingerprint:
                continue
        except OSError:
            pass
        engine.atomic_write(path, render.notebook(article, post, records, cache, url).encode("utf-8"))
        engine.atomic_write(key_file, fingerprint.encode())
    return nav


def on_page_markdown(markdown: str, page, config, files):
    build = state.build
    if build is None or "8<" not in markdown:
        return markdown
    includes = [inc for inc in engine.find_includes(markdown) if inc.snippet in build.records]
    if not includes:
        return markdown
    lines = markdown.split("\n")
    rels = []
    for n, inc in reversed(list(enumerate(includes))):
        lines[inc.close + 1:inc.close + 1] = ["", inc.indent + OUTPUT_MARK.format(n), ""]
        rels.append(inc.snippet)
    state.page_snippets[page.file.src_uri] = list(reversed(rels))
    articles = {build.records[r].snippet.article for r in rels}
    if any(a in state.notebooks for a in articles):
        lines += ["", NOTEBOOK_MARK, ""]
    return "\n".join(lines)


def on_page_content(html: str, page, config, files):
    src_uri = page.file.src_uri
    build = state.build
    if build is None:
        return html
    if src_uri.startswith(f"{NOTEBOOK_DIR}/") and src_uri.endswith(".ipynb"):
        page.meta["search"] = {"exclude": True}  # the article page already holds the same code
        return _slim_notebook(html, page)
    if src_uri == EXECUTIONS_PAGE:
        return html.replace(EXECUTIONS_MARK, render.render_executions_table(
            build, lambda record: _page_url_of(record, page, files)))
    if src_uri in state.code_fences:
        return html.replace(render.CODE_MARK, _highlighted(state.code_fences[src_uri], config), 1)
    rels = state.page_snippets.get(src_uri)
    if not rels:
        return html
    for n, rel in enumerate(rels):
        record = build.records[rel]
        urls = [get_relative_url(files.get_file_from_path(uri).url, page.url)
                for uri in state.figure_uris.get(rel, [])]
        html = html.replace(OUTPUT_MARK.format(n), render.render_output(record, urls), 1)
    if NOTEBOOK_MARK in html:
        links = []
        for article in dict.fromkeys(build.records[r].snippet.article for r in rels):
            nb_file = files.get_file_from_path(f"{NOTEBOOK_DIR}/{article}.ipynb")
            if nb_file is None:
                continue
            if nb_file.is_documentation_page():  # rendered by mkdocs-jupyter (include_source: true)
                view = f'<a href="{get_relative_url(nb_file.url, page.url)}">在线查看</a> · '
                download_uri = posixpath.join(posixpath.dirname(nb_file.dest_uri), f"{article}.ipynb")
            else:
                view, download_uri = "", nb_file.dest_uri
            download = get_relative_url(download_uri, page.url)
            links.append(f'<p class="snippet-notebook">本文全部代码及其运行结果的 Jupyter 笔记本：'
                         f'{view}<a href="{download}" download>下载 {article}.ipynb</a></p>')
        html = html.replace(NOTEBOOK_MARK, "\n".join(links))
    return html


def _blocks(html: str, opening: str, closing: str):
    """(start, end) of each ``opening ... closing`` block, found with str.find (pages are ~1 MB)."""
    pos = 0
    while (start := html.find(opening, pos)) >= 0:
        end = html.find(closing, start)
        if end < 0:
            return
        end += len(closing)
        yield start, end
        pos = end


def _slim_notebook(html: str, page) -> str:
    """Trim what mkdocs-jupyter puts into every notebook page.

    - its ~575 kB stylesheet, inlined in each page, becomes one shared file (written in on_post_build);
    - ``<script src="">`` and the MathJax 2 configuration (the site loads MathJax 3 itself; the
      notebooks hold no math) go, and so does the Mermaid loader that imports from a CDN (no
      notebook holds a diagram): pages of this site make no requests to other hosts.
    """
    cuts = []  # (start, end, replacement)
    for start, end in _blocks(html, '<style type="text/css">', "</style>"):
        css = html[start + len('<style type="text/css">'):end - len("</style>")]
        if len(css) >= 20_000:
            uri = f"assets/stylesheets/jupyter-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
            state.notebook_css[uri] = css
            cuts.append((start, end, f'<link rel="stylesheet" href="{get_relative_url(uri, page.url)}">'))
    for start, end in _blocks(html, '<script type="text/x-mathjax-config">', "</script>"):
        cuts.append((start, end, ""))
    for start, end in _blocks(html, '<script type="module">', "</script>"):
        if "cdnjs.cloudflare.com" in html[start:end] and "mermaid" in html[start:end]:
            cuts.append((start, end, ""))
    for start, end in _blocks(html, '<script src="">', "</script>"):
        cuts.append((start, end, ""))
    parts, pos = [], 0
    for start, end, replacement in sorted(cuts):
        if start < pos:
            continue
        parts += [html[pos:start], replacement]
        pos = end
    parts.append(html[pos:])
    return _align_notebook_anchors("".join(parts), page)


_NB_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link" href="#[^"]*">')


def _align_notebook_anchors(html: str, page) -> str:
    """Give each notebook heading the id that the page's table of contents links to.

    nbconvert derives heading ids from ASCII letters only (a Chinese title gets ``id=""``), while
    mkdocs-jupyter builds the table of contents, and Material its "skip to content" link, with
    Python-Markdown's ids (``_1``): those links pointed nowhere. Headings and entries come in the
    same order; when their counts differ, nothing is changed.
    """
    ids: list[str] = []

    def walk(items) -> None:
        for item in items:
            ids.append(item.id)
            walk(item.children)

    walk(getattr(page, "toc", None) or [])
    heads = list(_NB_HEADING.finditer(html))
    if not ids or len(heads) != len(ids):
        return html
    parts, pos = [], 0
    for m, anchor in zip(heads, ids):
        parts += [html[pos:m.start()],
                  f'<h{m.group(1)} id="{anchor}">{m.group(3)}<a class="anchor-link" href="#{anchor}">']
        pos = m.end()
    parts.append(html[pos:])
    return "".join(parts)


CODE_HTML_DIR = "code-html"
HIGHLIGHT_EXTENSIONS = ("pymdownx.highlight", "pymdownx.superfences")


def _highlighted(fence: str, config) -> str:
    """HTML of a module's fenced source, as the page's own Markdown would render it, cached by content.

    The key holds the fence (source, title), the Pygments and pymdown-extensions versions and the
    highlighting options of mkdocs.yml: a change of any of them renders again. Only these two
    extensions touch a fenced block, so rendering it alone gives the bytes the whole page would.
    """
    import markdown
    import pygments
    import pymdownx

    options = {name: config.mdx_configs.get(name, {}) for name in HIGHLIGHT_EXTENSIONS}
    key = hashlib.sha256(json.dumps(
        [fence, pygments.__version__, pymdownx.__version__, options], sort_keys=True,
        default=lambda o: getattr(o, "__qualname__", type(o).__name__)).encode()).hexdigest()
    path = state.root / ".cache" / CODE_HTML_DIR / f"{key}.html"
    state.code_html.add(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    html = markdown.Markdown(extensions=list(HIGHLIGHT_EXTENSIONS), extension_configs=options).convert(fence)
    engine.atomic_write(path, html.encode("utf-8"))
    return html


def _page_url_of(record, page, files):
    for src_uri in record.snippet.pages:
        f = files.get_file_from_path(src_uri)
        if f is not None:
            return get_relative_url(f.url, page.url)
    return None


def on_post_build(config):
    for uri, css in state.notebook_css.items():
        path = Path(config.site_dir) / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css, encoding="utf-8")
    if state.root is not None:
        engine.Cache(state.root).prune(_existing_snippets(state.root))
        _prune_code_html(state.root, state.code_html)


def _prune_code_html(root: Path, used: set[Path]) -> None:
    """Drop highlighted sources no build used for an hour (the grace is for a build running beside us)."""
    folder = root / ".cache" / CODE_HTML_DIR
    if not folder.is_dir():
        return
    now = time.time()
    for path in folder.glob("*.html"):
        try:
            if path not in used and now - path.stat().st_mtime > 3600:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _existing_snippets(root: Path) -> set[str]:
    snippet_dir = root / "snippets"
    if not snippet_dir.is_dir():
        return set()
    return {p.relative_to(root).as_posix() for p in snippet_dir.rglob("*.py")}
