"""MkDocs plugin ``spaces``: executed snippet outputs, module pages, notebooks and the run report.

Registered by the entry point ``mkdocs.plugins: spaces`` (pyproject.toml) and configured in mkdocs.yml::

    plugins:
      - spaces:
          device: !ENV [SPACES_DEVICE, auto]   # cpu | cuda | auto
          jobs: 0                              # snippets in parallel; 0: one per core
          timeout: 300                         # seconds per snippet
          keep_going: false                    # run them all and report every failure
          validation: true                     # spaces validate before anything runs
          page_cache: true                     # unchanged module/notebook pages from .cache/pages

On every build (``mkdocs build``, ``mkdocs serve``, ``spaces build``) it

- validates the project first (``spaces_build.validation``, in ``on_config``): a broken article fails
  the build with every problem listed, before any snippet runs (``mkdocs serve`` lists them as warnings);
- runs the stale snippets (``spaces_build.engine``) before anything is rendered, so no page ever shows
  stale output; a failing snippet fails the build (``mkdocs serve`` shows the failure on the page);
- embeds each output after its code block through the Markdown extension ``spaces_build.embed``;
- generates ``code/<module>.md`` for every module of ``spaces_code``, ``notebooks/<slug>.ipynb`` per
  article (rendered by mkdocs-jupyter, see ``spaces_build.jupyter``), ``executions.md`` and
  ``executions.json``;
- keeps the finished module and notebook pages in ``.cache/pages`` and serves them again while
  nothing they are made of has changed (``spaces_build.pagecache``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
import sys
import types
from pathlib import Path
from urllib.parse import urljoin

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import CountHandler, get_relative_url

from . import engine, jupyter, notebooks, pagecache, parsing, render
from .cache import Cache, atomic_write, prune_unused
from .config import DEVICES, EngineError, Options
from .embed import EmbedOutputsExtension
from .discovery import pages_of
from .engine import BuildState, run_build
from .sandbox import repo_snapshot

log = logging.getLogger("mkdocs.plugins.spaces")
# mkdocs-jupyter logs three INFO lines per notebook per build ("Cache hit", "Copied jupyter file"...).
logging.getLogger("mkdocs.plugins.mkdocs_jupyter").setLevel(logging.WARNING)

_DEFAULTS = Options()
NOTEBOOK_MARK = "<!-- spaces-notebook-link -->"
EXECUTIONS_MARK = "<!-- spaces-executions-table -->"
EXECUTIONS_PAGE = "executions.md"
CODE_DIR = "code"
NOTEBOOK_DIR = "notebooks"
CODE_HTML_DIR = "code-html"
HIGHLIGHT_EXTENSIONS = ("pymdownx.highlight", "pymdownx.superfences")
VALIDATED = "validated.json"


class SpacesConfig(base.Config):
    jobs = c.Type(int, default=_DEFAULTS.jobs)
    device = c.Choice(DEVICES, default=_DEFAULTS.device)
    timeout = c.Type((int, float), default=_DEFAULTS.timeout)
    keep_going = c.Type(bool, default=_DEFAULTS.keep_going)
    sandbox = c.Choice(("auto", "off"), default=_DEFAULTS.sandbox)
    execute = c.Type(bool, default=_DEFAULTS.execute)
    preload = c.Type(bool, default=_DEFAULTS.preload)
    validation = c.Type(bool, default=True)  # spaces validate before anything runs
    page_cache = c.Type(bool, default=True)  # serve unchanged module/notebook pages from .cache/pages


def options_from(cfg: SpacesConfig, serve: bool = False) -> Options:
    """The engine's options from the plugin's validated configuration (its one reading of them)."""
    try:
        return Options(jobs=cfg.jobs, device=cfg.device, timeout=float(cfg.timeout), keep_going=cfg.keep_going,
                       serve=serve, sandbox=cfg.sandbox, execute=cfg.execute, preload=cfg.preload)
    except EngineError as exc:
        raise PluginError(f"spaces: {exc}") from None


@dataclasses.dataclass
class _Build:
    """What one build learned, for the later events of the same build."""

    root: Path
    build: BuildState
    figure_uris: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # snippet rel -> src_uris
    figure_files: dict[str, str] = dataclasses.field(default_factory=dict)  # SVG sha256 -> its site path
    notebooks: dict[str, Path] = dataclasses.field(default_factory=dict)  # article -> .cache/notebooks file
    notebook_keys: dict[str, str] = dataclasses.field(default_factory=dict)  # article -> fingerprint (on_nav)
    notebook_css: dict[str, str] = dataclasses.field(default_factory=dict)  # site path -> stylesheet
    code_fences: dict[str, str] = dataclasses.field(default_factory=dict)  # code page src_uri -> fence
    code_html: set[Path] = dataclasses.field(default_factory=set)  # highlighted sources used
    pages: pagecache.PageCache | None = None  # finished generated pages (spaces_build.pagecache)
    site_key: str | None = None  # what every generated page shares, from on_nav
    from_cache: set[str] = dataclasses.field(default_factory=set)  # src_uris rendered from the cache
    to_store: dict[str, str] = dataclasses.field(default_factory=dict)  # src_uri -> key, stored on_post_page
    page: object = None  # the page being rendered
    files: Files | None = None


class SpacesPlugin(BasePlugin[SpacesConfig]):
    supports_multiple_instances = False

    def __init__(self):
        self.command = "build"
        self.state: _Build | None = None
        self.embed = EmbedOutputsExtension(source=self)
        self.warnings: CountHandler | None = None

    # ------------------------------------------------------------------------------------------
    # options and validation

    def on_startup(self, *, command, dirty):
        self.command = command

    def options(self) -> Options:
        return options_from(self.config, serve=self.command == "serve")

    @event_priority(90)  # first thing of every build: before any plugin reads a page or a snippet runs
    def on_config(self, config):
        """Validation before anything executes; the outputs' Markdown extension.

        ``mkdocs build`` fails with every problem listed as ``path:line: message``; no snippet has run
        and the previous site is left as it was. ``mkdocs serve`` lists them as warnings and goes on,
        so that an article can be previewed while it is being written.
        """
        self.state = None
        if self.embed not in config.markdown_extensions:
            config.markdown_extensions.append(self.embed)
        root = Path(config.config_file_path).resolve().parent
        if not engine.prestart_checked(root):  # `spaces build` started it before MkDocs loaded
            # The fork server imports torch while MkDocs and the validation work; nothing runs before
            # the validation passed.
            try:
                engine.prestart(root, pages_of(Path(config.docs_dir)), self.options())
            except PluginError:
                pass  # the options' error is reported where they are used
        if not self.config.validation:
            return config
        problems = validate_memoized(root)
        if not problems:
            return config
        listing = "\n".join(f"  {p}" for p in problems)
        if self.command == "serve":
            log.warning(f"Validation: {len(problems)} problem(s) (the build will fail until they are "
                        f"fixed):\n{listing}")
            return config
        raise PluginError(f"Validation failed: {len(problems)} problem(s); nothing was executed or built. "
                          f"Fix them and build again (`spaces validate` checks without building):\n{listing}")

    def on_build_error(self, error):
        engine.forget_prestart()
        self._stop_counting()

    def _stop_counting(self) -> None:
        if self.warnings is not None:
            logging.getLogger("mkdocs").removeHandler(self.warnings)
            self.warnings = None

    def on_pre_build(self, config):
        # Generated pages are stored for the next build only if this one logs no warning.
        self._stop_counting()
        self.warnings = CountHandler(level=logging.WARNING)  # MkDocs' own, as --strict counts them
        logging.getLogger("mkdocs").addHandler(self.warnings)
        jupyter.drop_torn_cache(config)
        if config.plugins.get("mkdocs-jupyter") is not None:
            jupyter.share_templates()

    # ------------------------------------------------------------------------------------------
    # execution and generated files

    @event_priority(50)  # before mkdocs-jupyter's on_files, which must see the generated notebooks
    def on_files(self, files: Files, config):
        root = Path(config.config_file_path).resolve().parent
        pages = {f.src_uri: Path(f.abs_src_path) for f in files.documentation_pages()
                 if f.src_uri.endswith(".md") and f.abs_src_path and not f.generated_by}
        try:
            build = run_build(root, pages, self.options())
        except EngineError as exc:
            raise PluginError(str(exc)) from None
        pages = pagecache.PageCache(root) if self.config.page_cache else None
        state = self.state = _Build(root, build, files=files, pages=pages)
        cache = Cache(root)

        # Figures: generated files backed by the content-addressed cache (copied, never re-rendered).
        for rel, record in build.records.items():
            if record.ok:
                uris = []
                for i, sha in enumerate(record.entry.figures, start=1):
                    uri = render.figure_src_uri(rel, i)
                    figure = File.generated(config, uri, abs_src_path=str(cache.figure_path(sha)))
                    _add(files, figure)
                    uris.append(uri)
                    state.figure_files.setdefault(sha, figure.url)
                state.figure_uris[rel] = uris

        self._add_code_pages(files, config)

        # Notebooks: the File now (mkdocs-jupyter wraps it next), the content in on_nav, once URLs are final.
        nb_dir = root / ".cache" / NOTEBOOK_DIR
        for article in build.articles():
            path = nb_dir / f"{article}.ipynb"
            if not path.exists():
                atomic_write(path, b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
            # A plain File rooted in .cache/ (not File.generated): mkdocs-jupyter's wrapper reads the
            # notebook through src_dir, which generated files do not have.
            _add(files, File(f"{NOTEBOOK_DIR}/{article}.ipynb", src_dir=str(path.parent.parent),
                             dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))
            state.notebooks[article] = path

        # Out of the search index, like the module and notebook pages: its rows are file names and
        # seconds, which the articles' own pages (indexed) already name.
        _add(files, File.generated(config, EXECUTIONS_PAGE,
                                   content=f"---\nsearch:\n  exclude: true\n---\n\n# 代码运行记录\n\n本站每段代码都由构建在独立进程中实际运行；"
                                           f"代码及其导入的模块都没有改动时，直接使用缓存的结果。"
                                           f"机器可读的版本：[executions.json](executions.json)。\n\n"
                                           f"{EXECUTIONS_MARK}\n"))
        _add(files, File.generated(config, "executions.json", content=render.executions_json(build)))
        return files

    def _add_code_pages(self, files: Files, config) -> None:
        """``code/<module>.md`` per module of spaces_code, linking back to the articles using it."""
        state = self.state
        root, build = state.root, state.build
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
            for kind, rel, _ in record.entry.deps:
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
        _add(files, File.generated(config, f"{CODE_DIR}/index.md",
                                   content=render.code_index_page(modules, users)))

    @event_priority(-90)  # after the blog plugin has given posts their final URLs
    def on_nav(self, nav, config, files):
        state = self.state
        if state is None:
            return nav
        build = state.build
        cache = Cache(state.root)
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
            fingerprint = notebooks.notebook_fingerprint(article, post, records, url)
            state.notebook_keys[article] = fingerprint
            key_file = path.with_suffix(".key")
            try:
                if path.exists() and key_file.read_text() == fingerprint:
                    continue
            except OSError:
                pass
            atomic_write(path, notebooks.notebook(article, post, records, cache, url).encode("utf-8"))
            atomic_write(key_file, fingerprint.encode())
        state.site_key = pagecache.site_key(config, nav, files)
        return nav

    def on_env(self, env, config, files):
        """The template of pages rendered from the cache (``spaces_build.pagecache``): their stored HTML."""
        import jinja2

        env.loader = jinja2.ChoiceLoader([env.loader, jinja2.DictLoader(
            {pagecache.TEMPLATE: pagecache.TEMPLATE_SOURCE})])
        return env

    @event_priority(-50)  # after mkdocs-jupyter's on_pre_page, which sets a notebook page's render
    def on_pre_page(self, page, config, files):
        """A module or notebook page whose inputs are unchanged since a build stored it: its stored HTML."""
        state = self.state
        if state is None or state.site_key is None or state.pages is None:
            return page
        src_uri = page.file.src_uri
        if src_uri in state.code_fences:
            inputs = [page.file.content_string, state.code_fences[src_uri]]
        elif src_uri.startswith(f"{NOTEBOOK_DIR}/") and src_uri.endswith(".ipynb"):
            # The notebook's fingerprint stands for its bytes: equal fingerprints, equal notebooks
            # (notebooks.notebook_fingerprint), and on_nav has just written the notebook to match it.
            fingerprint = state.notebook_keys.get(src_uri[len(NOTEBOOK_DIR) + 1:-len(".ipynb")])
            if fingerprint is None:
                return page
            inputs = [fingerprint]
        else:
            return page
        key = pagecache.page_key(state.site_key, page, inputs)
        entry = state.pages.load(key)
        sheets = {}
        for uri in (entry or {}).get("stylesheets") or []:  # the notebook stylesheet it links
            sheets[uri] = state.notebook_css.get(uri) or state.pages.asset(uri)
        if entry is None or not all(sheets.values()):
            state.to_store[src_uri] = key
            return page
        state.notebook_css.update(sheets)
        page.render = types.MethodType(pagecache.rendered(entry), page)
        state.from_cache.add(src_uri)
        return page

    @event_priority(-100)  # the last: what is stored is what MkDocs writes
    def on_post_page(self, output, page, config):
        state = self.state
        if state is not None and state.pages is not None:
            key = state.to_store.pop(page.file.src_uri, None)
            if key is not None:
                sheets = {}
                if page.file.src_uri.startswith(f"{NOTEBOOK_DIR}/"):
                    sheets = {uri: css for uri, css in state.notebook_css.items() if uri in output}
                state.pages.stage(key, page, output, sheets)
        return output

    # ------------------------------------------------------------------------------------------
    # pages

    def output_html(self, rel: str) -> str | None:
        """The output of snippet ``rel`` for the page being rendered (``spaces_build.embed`` asks)."""
        state = self.state
        if state is None or rel not in state.build.records:
            return None
        page, files = state.page, state.files
        urls = [get_relative_url(files.get_file_from_path(uri).url, page.url) if page is not None else uri
                for uri in state.figure_uris.get(rel, [])]
        return render.render_output(state.build.records[rel], urls)

    def on_page_markdown(self, markdown: str, page, config, files):
        state = self.state
        if state is None:
            return markdown
        state.page, state.files = page, files
        if "8<" not in markdown:
            return markdown
        rels = [inc.snippet for inc in parsing.find_includes(markdown) if inc.snippet in state.build.records]
        articles = {state.build.records[r].snippet.article for r in rels}
        if any(a in state.notebooks for a in articles):
            markdown = "\n".join([markdown, "", NOTEBOOK_MARK, ""])
        return markdown

    def on_page_content(self, html: str, page, config, files):
        state = self.state
        if state is None:
            return html
        src_uri = page.file.src_uri
        build = state.build
        if src_uri.startswith(f"{NOTEBOOK_DIR}/") and src_uri.endswith(".ipynb"):
            page.meta["search"] = {"exclude": True}  # the article page already holds the same code
            if src_uri in state.from_cache:
                return html
            return jupyter.slim_page(html, page, state.notebook_css, state.figure_files)
        if src_uri in state.from_cache:
            if src_uri in state.code_fences:  # its highlighted source stays in .cache/code-html too
                self._highlighted_path(state.code_fences[src_uri], config)
            return html
        if src_uri == EXECUTIONS_PAGE:
            return html.replace(EXECUTIONS_MARK, render.render_executions_table(
                build, lambda record: _page_url_of(record, page, files)))
        if src_uri in state.code_fences:
            return html.replace(render.CODE_MARK, self._highlighted(state.code_fences[src_uri], config), 1)
        if NOTEBOOK_MARK in html:
            markdown = page.markdown or ""
            rels = [inc.snippet for inc in parsing.find_includes(markdown) if inc.snippet in build.records]
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

    def _highlighted(self, fence: str, config) -> str:
        """HTML of a module's fenced source, as the page's own Markdown would render it, cached by content.

        The key holds the fence (source, title), the Pygments and pymdown-extensions versions and the
        highlighting options of mkdocs.yml: a change of any of them renders again. Only these two
        extensions touch a fenced block, so rendering it alone gives the bytes the whole page would.
        """
        import markdown

        path, options = self._highlighted_path(fence, config)
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            pass
        html = markdown.Markdown(extensions=list(HIGHLIGHT_EXTENSIONS), extension_configs=options).convert(fence)
        atomic_write(path, html.encode("utf-8"))
        return html

    def _highlighted_path(self, fence: str, config) -> tuple[Path, dict]:
        """Where :meth:`_highlighted` keeps ``fence``'s HTML (marked as used by this build), and the options."""
        import pygments
        import pymdownx

        options = {name: config.mdx_configs.get(name, {}) for name in HIGHLIGHT_EXTENSIONS}
        key = hashlib.sha256(json.dumps(
            [fence, pygments.__version__, pymdownx.__version__, options], sort_keys=True,
            default=lambda o: getattr(o, "__qualname__", type(o).__name__)).encode()).hexdigest()
        path = self.state.root / ".cache" / CODE_HTML_DIR / f"{key}.html"
        self.state.code_html.add(path)
        return path, options

    def on_post_build(self, config):
        state = self.state
        if state is None:
            return
        for uri, css in state.notebook_css.items():
            path = Path(config.site_dir) / uri
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(css, encoding="utf-8")
        if state.pages is not None:
            stored = state.pages.commit() if self.warnings is not None and not self.warnings.get_counts() else 0
            log.info(f"Generated pages: {len(state.from_cache)} from .cache/pages, "
                     f"{len(state.pages.staged) + stored} rendered ({stored} stored)")
            state.pages.prune()
        self._stop_counting()
        Cache(state.root).prune(state.build.lookups)
        prune_unused(state.root / ".cache" / CODE_HTML_DIR, "*.html", state.code_html)  # highlighted sources

    def on_shutdown(self):
        self._stop_counting()


def _add(files: Files, file: File) -> None:
    existing = files.get_file_from_path(file.src_uri)
    if existing is not None:
        files.remove(existing)
    files.append(file)


def _page_url_of(record, page, files):
    for src_uri in record.snippet.pages:
        f = files.get_file_from_path(src_uri)
        if f is not None:
            return get_relative_url(f.url, page.url)
    return None


def validate_memoized(root: Path) -> list:
    """``validation.validate(root)``, skipped when nothing changed since a clean validation.

    Parsing every test and module costs ~0.3 s, the largest part of what a warm build adds to a plain
    ``mkdocs build``. The key is the size, times and inode of every file of the repository
    (``sandbox.repo_snapshot``, ~2 ms) with the validator's own source and the Python and PyYAML
    versions: any edit anywhere validates again. Only a clean result is remembered.
    """
    import yaml

    from . import validation

    key = hashlib.sha256(json.dumps(
        [sorted(repo_snapshot(root).items()), Path(validation.__file__).read_text(encoding="utf-8"),
         Path(parsing.__file__).read_text(encoding="utf-8"), sys.version,
         getattr(yaml, "__version__", "")]).encode()).hexdigest()
    memo = root / ".cache" / VALIDATED
    try:
        if json.loads(memo.read_text(encoding="utf-8")).get("key") == key:
            return []
    except (OSError, ValueError, AttributeError):
        pass
    problems = validation.validate(root)
    if not problems:
        atomic_write(memo, json.dumps({"key": key}).encode())
    return problems
