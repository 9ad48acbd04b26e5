"""One build of the snippets: discover them, check the cache, execute what is stale, store the results.

The orchestration only; each step lives in its own module (``discovery``, ``device``, ``cache``,
``executor``, ``sandbox``). Used by the MkDocs plugin (``spaces_build.plugin``) and by
``spaces build --execute-only``; nothing here imports MkDocs, torch, NumPy or matplotlib: the build
process only hashes files, so a warm build costs next to nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import platform
import sys
import time
from pathlib import Path

from .cache import SCHEMA, Cache, Hasher, cache_key, lookup_key
from .config import EngineError, Options
from .device import resolve_device, version_of
from .discovery import Post, Snippet, discover
from .executor import RUNNER, SNIPPET_ENV, Record, child_env, discard_prestarted, execute, prestart_server
from .sandbox import RepoWatch, sandbox_mode

log = logging.getLogger("mkdocs.spaces.engine")

_ENV_MEMO: dict[tuple, dict] = {}


def environment(device: str) -> dict:
    """What besides the sources decides a snippet's output: part of every cache key."""
    memo_key = (sys.executable, device, RUNNER.stat().st_mtime_ns)
    if memo_key not in _ENV_MEMO:
        _ENV_MEMO[memo_key] = {
            "schema": SCHEMA,
            "python": platform.python_version(),
            "torch": version_of("torch"),
            "numpy": version_of("numpy"),
            "device": device,
            "runner": hashlib.sha256(RUNNER.read_bytes()).hexdigest()[:16],
            "snippet_env": SNIPPET_ENV,
        }
    return _ENV_MEMO[memo_key]


def _changed_since(root: Path, deps: list[list[str]], started_ns: int) -> bool:
    for kind, rel, _ in deps:
        try:
            if (root / rel).stat().st_mtime_ns > started_ns:
                return True
        except OSError:
            pass
    return False


def _sha_now(snippet: Snippet) -> str:
    try:
        return hashlib.sha256(snippet.path.read_bytes()).hexdigest()
    except OSError:
        return ""


@dataclasses.dataclass
class BuildState:
    records: dict[str, Record]  # by snippet rel
    posts: dict[str, Post]  # by docs-relative src_uri
    device: str
    executed: int
    lookups: set[str] = dataclasses.field(default_factory=set)  # cache files of this build's snippets

    def __post_init__(self):
        self._articles = None
        self._article_posts = None

    def articles(self) -> dict[str, list[Record]]:
        """Snippets per article folder, in the order the article's page includes them."""
        if self._articles is None:
            self._articles = self._group_by_article()
        return self._articles

    def post_for_article(self, article: str) -> Post | None:
        """The page that includes the article's snippets, else the post whose slug is the article's."""
        if self._article_posts is None:
            found: dict[str, Post] = {}
            for post in self.posts.values():
                found.setdefault(post.slug, post)
            for rel in sorted(self.records):
                snippet = self.records[rel].snippet
                if snippet.pages:
                    found.setdefault("\0" + snippet.article, self.posts[snippet.pages[0]])
            self._article_posts = found
        return self._article_posts.get("\0" + article) or self._article_posts.get(article)

    def _group_by_article(self) -> dict[str, list[Record]]:
        position: dict[str, tuple] = {}
        for post in self.posts.values():
            for n, inc in enumerate(post.includes):
                position.setdefault(inc.snippet, (0, post.src_uri, n))
        by_article: dict[str, list[Record]] = {}
        for rel in sorted(self.records, key=lambda r: (position.get(r, (1, "", 0)), r)):
            record = self.records[rel]
            if record.snippet.article:
                by_article.setdefault(record.snippet.article, []).append(record)
        return by_article


def run_build(root: Path, pages: dict[str, Path], options: Options) -> BuildState:
    """Find every snippet, run the stale ones, and return a record for each.

    Raises :class:`EngineError` naming every failed snippet, unless ``options.serve``. With
    ``options.shard = (K, N)`` only shard K of the stale snippets runs (see ``spaces_build.shard``);
    with ``options.execute`` false nothing runs and a stale snippet is an error.
    """
    t0 = time.perf_counter()
    _PRESTART_CHECKED.discard(root.resolve())
    try:
        snippets, posts, device, env, cache, lookups, records, stale, expected = _check(root, pages, options)
    except BaseException:
        discard_prestarted()
        raise
    if not stale or not options.execute:
        discard_prestarted()  # started by prestart() for nothing: the snippets changed back meanwhile
    sandbox = sandbox_mode(options.sandbox)
    log.info(f"Snippets: {len(snippets)} found, {len(snippets) - len(stale)} cached, "
             f"{len(stale)} to run on {device} with {options.workers} jobs "
             f"(cache check {time.perf_counter() - t0:.2f} s)")
    if stale and not options.execute:
        raise EngineError(f"{len(stale)} snippet(s) are not in the cache and execution is off: "
                          + ", ".join(s.rel for s in stale))
    failures = []
    if stale:
        # Where the kernel keeps the repository read-only for the snippets, a change during the build
        # is someone's edit, not a snippet's: compare only where it does not.
        watch = RepoWatch(root) if sandbox == "off" else RepoWatch.disabled(root)

        def finished(record: Record) -> None:
            """Cache each success as soon as it arrives: a build killed later keeps it."""
            watch.check(record)
            if record.ok:
                entry = record.entry
                # Hash the dependencies as they are now (after the run, like make's depfiles) ...
                fresh = Hasher(root)
                entry.deps = sorted([kind, rel, fresh(kind, rel)] for kind, rel, _ in entry.deps)
                entry.env = env
                entry.key = cache_key(record.snippet.sha256, entry.deps, env)
                # ... unless one was edited while the snippet ran: then the output may predate it.
                if watch.suspects(record.snippet.rel):
                    log.info(f"{record.snippet.rel}: the repository changed while it ran; not cached")
                    entry.figures = [cache.store_figure(data) for data in record.figures]
                elif (_changed_since(root, entry.deps, record.started_ns)
                      or record.snippet.sha256 != _sha_now(record.snippet)):
                    log.info(f"{record.snippet.rel}: a source changed while it ran; not cached")
                    entry.figures = [cache.store_figure(data) for data in record.figures]
                else:
                    cache.store(lookups[record.snippet.rel], entry, record.figures)
                record.figures = []
            else:
                failures.append(record)
            records[record.snippet.rel] = record

        t_run = time.perf_counter()
        execute(root, stale, device, options, sandbox, expected, finished)
        watch.check(None)
        ran = len(stale)
        done = sum(1 for s in stale if s.rel in records)
        # benchmarks/run.py reads this line: the execution phase alone, for --jobs comparisons
        log.info(f"Snippets: executed {done} in {time.perf_counter() - t_run:.2f} s with {options.workers} jobs")
        if done < ran:
            log.info(f"Stopped after the first failure: {ran - done} snippets were not run "
                     "(use --keep-going to run them all)")
        repo_message = watch.report()
        for rel in watch.all_suspects():  # never served from the cache: the next build runs them again
            cache.discard(lookups[rel])
    else:
        repo_message = ""
    if failures or repo_message:
        failures.sort(key=lambda r: r.snippet.rel)
        message = "\n".join(filter(None, [repo_message, failures and (
            f"{len(failures)} snippet(s) failed:\n" + "\n".join(r.describe_failure() for r in failures))]))
        if options.serve:
            log.error(message)
        else:
            raise EngineError(message)
    executed = sum(1 for r in records.values() if not r.cached)
    return BuildState(records, posts, device, executed, set(lookups.values()))


def _check(root: Path, pages: dict[str, Path], options: Options):
    """Discovery and the cache check: the snippets, posts, device, environment, cache, lookup keys,
    records of the fresh snippets, the stale snippets (shard K/N of them with ``options.shard``) and
    the recorded seconds of the stale ones that ran before."""
    snippets, posts = discover(root, pages)
    device = resolve_device(options.device, root)
    env = environment(device)
    cache = Cache(root)
    hasher = Hasher(root)
    records: dict[str, Record] = {}
    stale: list[Snippet] = []
    expected: dict[str, float] = {}
    lookups = {rel: lookup_key(rel, s.sha256, env) for rel, s in snippets.items()}
    for rel, snippet in snippets.items():
        entry = cache.load(lookups[rel])
        if cache.is_fresh(entry, snippet.sha256, env, hasher):
            records[rel] = Record(snippet, "ok", True, entry=entry, seconds=entry.seconds,
                                  peak_memory_mb=entry.peak_memory_mb)
        else:
            stale.append(snippet)
            if entry is not None:
                expected[rel] = entry.seconds
    if options.shard is not None and stale:
        stale = _shard(stale, expected, cache, *options.shard)
    return snippets, posts, device, env, cache, lookups, records, stale, expected


_PRESTART_CHECKED: set[Path] = set()  # roots whose next build prestart() has checked already


def prestart_checked(root: Path) -> bool:
    """Whether :func:`prestart` ran for ``root``'s build that has not run yet (``spaces build`` calls
    it before MkDocs starts; the plugin's ``on_config`` then need not check again)."""
    return root.resolve() in _PRESTART_CHECKED


def forget_prestart() -> None:
    """After a build that ended before its snippets ran: stop an unused prestarted server, forget the check."""
    _PRESTART_CHECKED.clear()
    discard_prestarted()


def prestart(root: Path, pages: dict[str, Path], options: Options) -> bool:
    """Start the pre-imported fork server now if this build will execute snippets.

    Called before MkDocs loads its configuration and plugins and before validation (``spaces build``,
    else the plugin's ``on_config``): the server's seconds of importing torch then overlap with that
    work instead of delaying the first snippet. :func:`run_build` repeats the cache check (~20 ms)
    and uses the server (``executor.execute``) or stops it when nothing turned out stale. Never
    raises: any problem here is reported by the build's own check.
    """
    _PRESTART_CHECKED.add(root.resolve())
    if not (options.preload and options.execute):
        return False
    try:
        checked = _check(root, pages, options)
        device, stale = checked[2], checked[7]
        return bool(stale) and prestart_server(child_env(root, device))
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        log.debug(f"prestart: {exc}")
        return False


def _shard(stale: list[Snippet], expected: dict[str, float], cache: Cache, k: int, n: int) -> list[Snippet]:
    """Shard ``k`` (1-based) of ``n`` of the stale snippets, balanced by their recorded (else estimated) seconds."""
    from . import shard

    known = [(_size(cache.root / e.snippet), e.seconds) for e in cache.all_entries()]
    items = [(s.rel, expected[s.rel] if s.rel in expected else shard.estimate_seconds(len(s.source.encode()), known))
             for s in stale]
    chosen = set(shard.plan(items, n)[k - 1])
    log.info(f"Shard {k}/{n}: {len(chosen)} of the {len(stale)} stale snippets")
    return [s for s in stale if s.rel in chosen]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
