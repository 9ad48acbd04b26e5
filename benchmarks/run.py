"""The build's benchmark suite (issue 8): run every scenario on a temporary copy of the project.

    python benchmarks/run.py [--json PATH] [--skip-scale] [--skip-reader] [--skip-parallel]
                             [--skip-preload] [--skip-shards] [--skip-peers] [--skip-warm] [--skip-touch]
                             [--repeat N] [--scale 100,1000] [--jobs N] [--device cpu|cuda|auto]
                             [--keep] [--exclude PATH ...]

Prints a table and writes the numbers as one JSON object (``--json``). Nothing of the repository is
touched: the project is copied (without ``.cache/``, ``site/``, ``.git``, ``.venv``) into a temporary
folder, every build writes there, and the folder is removed at the end (``--keep`` keeps it).

Scenarios, in this order, all in one run so that ratios compare like with like:

- ``cold_seconds``: ``scripts/build.py`` from an empty cache (every snippet executed, site written),
  with ``--jobs`` (default: the number of cores); ``peak_memory_mb`` is the build process's own peak
  resident memory (VmHWM), ``peak_tree_memory_mb`` that of the build and its snippet processes together
  (their RSS summed: a page the forked snippets share with the fork server counts once per process),
  ``peak_tree_pss_mb`` the same with each process's proportional set size (shared pages counted once).
- ``parallel_speedup``: the execution phase alone (the engine's "executed N in T s" line) of a second
  cold build, run right after the first with ``--jobs 1``, over that of the first (``--jobs N``).
  Timing-dependent snippets run one at a time in both (by design), and count in both.
- ``warm_seconds`` / ``plain_mkdocs_seconds``: a rebuild with nothing changed, and ``mkdocs build`` of
  the same tree with the execution plugin (``- spaces:``) taken out of ``mkdocs.yml``,
  i.e. the same site without snippet outputs, notebooks, module pages and run report (mkdocs-jupyter
  stays configured, with nothing to convert). Each is run ``--repeat`` times, alternating, after one
  untimed run each; medians are reported. ``warm_over_plain`` is the median of the ratios of each warm
  build to the plain build right after it (the two share the machine's load of that moment);
  ``warm_over_plain_of_medians`` and ``warm_over_plain_cpu`` (CPU seconds) are reported beside it.
  ``warm_generated_pages``: per warm build, the module and notebook pages served from ``.cache/pages``
  and those rendered (``spaces_build.pagecache``). ``warm_over_plain_without_page_cache``: the same
  pairs (at most 3) with ``page_cache: false`` written into the copy's ``mkdocs.yml``, every generated
  page rendered: what that cache buys.
- ``preload_speedup``: the execution phase of a third cold build, with ``--no-preload`` (every snippet a
  plain new interpreter), over that of the first (snippets forked from the pre-imported server,
  ``spaces_build/forkserver.py``); ``preload_cold_speedup``, the same for the whole cold build.
- ``shard_merge_identical``: the publish workflow simulated on fresh copies: ``--execute-only --shard
  K/4`` on four copies, their ``.cache/`` folders merged by copying files, a build with
  ``--no-execute``; true when that site and cache equal the cold build's (``spaces_build.reproducible``).
  ``shard_balance``: the longest of N = 4 shards' predicted seconds over the mean
  (``spaces_build.shard``), from the 1,000-article synthetic archive's recorded durations
  (``shard_balance_archive``: from the real archive's).
- ``peers``: the same articles and snippet sources through markdown-exec and mkdocs-jupyter
  (``benchmarks/peers.py``), each cold, warm and after touching the same module as below, beside ours.
- ``touch_one_snippet_executed``: snippets run after one snippet's source changed (must be 1).
- ``touch_one_module_executed``: snippets run after one ``spaces_code`` module changed, and
  ``touch_one_module_importers``, how many snippets import it (from the cache's recorded imports).
- ``scale_1000_over_100``: cold builds of synthetic archives (``benchmarks/synthetic.py``) of 1,000 and
  of 100 articles, with both absolute times (and the warm rebuilds, for reference).
- reader side: every article page of the built site, served locally, opened in headless
  Chromium (Debian's, driven by playwright) in a new browser context (an empty cache: a first visit):
  bytes the server sent for it, all requests (``reader_bytes_median``) and the article's HTML, scripts
  and stylesheets alone (``reader_html_js_css_bytes_median``), the same files gzip-compressed, and the
  time from navigation start until the first formula (``mjx-container``, typeset at build time: no
  MathJax runs in the browser, ``reader_mathjax_pages`` counts pages that load it) is in the document
  (``reader_typeset_ms_median``); medians over the articles with formulas.

The machine's load average is recorded before and after: other work on the machine slows every
scenario, and ratios taken in one run share that load.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.server
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

REPO = Path(__file__).resolve().parents[1]


def _load_sibling(name: str):
    """A module of this folder: a sibling (``python benchmarks/run.py``) or a submodule."""
    import importlib

    return importlib.import_module(f"{__package__}.{name}" if __package__ else name)


def _load_synthetic():
    """benchmarks/synthetic.py: a sibling module (``python benchmarks/run.py``) or a submodule
    (``import benchmarks.run`` from the repository root, as the tests do)."""
    if __package__:
        from . import synthetic as module
    else:
        import synthetic as module
    return module


synthetic = _load_synthetic()
peers = _load_sibling("peers")

# not part of the project's sources: never copied
SKIP_TOP = {".venv", "venv", ".git", ".cache", "site", ".pytest_cache", "build", ".whl", ".gl"}
SKIP_ANY = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
EXEC_LINE = re.compile(r"Snippets: executed (\d+) in ([0-9.]+) s with (\d+) jobs")
CACHE_CHECK = re.compile(r"Snippets: \d+ found, .*\(cache check ([0-9.]+) s\)")
PAGES_LINE = re.compile(r"Generated pages: (\d+) from \.cache/pages, (\d+) rendered")
PLAIN_CONFIG = "mkdocs-plain.yml"
PLUGIN_LINE = "- spaces:"  # the execution plugin's entry in mkdocs.yml
TOUCH = "\n# benchmarks/run.py: touched\n"


# --------------------------------------------------------------------------------------------------
# Running a build


class Run:
    """One timed build: wall and CPU seconds, peak memory, output."""

    def __init__(self, wall: float, cpu: float, code: int, output: str, peak_mb: float | None,
                 tree_peak_mb: float | None, tree_pss_mb: float | None = None):
        self.wall, self.cpu, self.code, self.output = wall, cpu, code, output
        self.peak_mb, self.tree_peak_mb, self.tree_pss_mb = peak_mb, tree_peak_mb, tree_pss_mb

    def exec_phase(self) -> float | None:
        m = EXEC_LINE.search(self.output)
        return float(m.group(2)) if m else None

    def cache_check(self) -> float | None:
        m = CACHE_CHECK.search(self.output)
        return float(m.group(1)) if m else None

    def generated_pages(self) -> tuple[int, int] | None:
        """(served from the page cache, rendered) of the generated module and notebook pages."""
        m = PAGES_LINE.search(self.output)
        return (int(m.group(1)), int(m.group(2))) if m else None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # like a user's shell: bytecode caches are written
    return env


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def _status_kb(pid: int, field: bytes, source: str = "status") -> int | None:
    """A ``field: N kB`` line of ``/proc/<pid>/<source>``."""
    try:
        with open(f"/proc/{pid}/{source}", "rb") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _pss_kb(pid: int) -> int | None:
    """Proportional set size: each page shared by N processes counts 1/N in each (Linux >= 4.14)."""
    return _status_kb(pid, b"Pss:", "smaps_rollup")


class _MemoryWatch(threading.Thread):
    """Samples (every 0.2 s) the build's own peak RSS and, over the build and its descendants, the sum
    of their RSS and the sum of their PSS. Snippet processes forked from the pre-imported server share
    its pages (torch's libraries): the RSS sum counts those pages once per process, the PSS sum once."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.own_kb = 0
        self.tree_kb = 0
        self.tree_pss_kb = 0
        self.done = threading.Event()

    def run(self):
        if not os.path.isdir("/proc"):
            return
        while not self.done.is_set():
            hwm = _status_kb(self.pid, b"VmHWM:")
            if hwm:
                self.own_kb = max(self.own_kb, hwm)
            kids, total, pss, todo = _children(), 0, 0, [self.pid]
            while todo:
                pid = todo.pop()
                total += _status_kb(pid, b"VmRSS:") or 0
                pss += _pss_kb(pid) or 0
                todo += kids.get(pid, [])
            self.tree_kb = max(self.tree_kb, total)
            self.tree_pss_kb = max(self.tree_pss_kb, pss)
            self.done.wait(0.2)


def run_build(cmd: list[str], cwd: Path, timeout: float = 3600) -> Run:
    """Run ``cmd`` in ``cwd``; wall time, CPU time of it and its descendants, peak memory."""
    log = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    watch = _MemoryWatch(proc.pid)
    watch.start()
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.02)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    watch.done.set()
    watch.join()
    log.seek(0)
    output = log.read().decode("utf-8", errors="replace")
    log.close()
    mb = lambda kb: round(kb / 1024, 1) if kb else None  # noqa: E731
    return Run(wall, usage.ru_utime + usage.ru_stime, proc.returncode, output, mb(watch.own_kb),
               mb(watch.tree_kb), mb(watch.tree_pss_kb))


def build_cmd(site: Path, jobs: int, device: str, *extra: str) -> list[str]:
    return [sys.executable, "scripts/build.py", "--site-dir", str(site), "--jobs", str(jobs),
            "--device", device, *extra]


def spaces_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spaces_build.cli", "build", *args]


def check(run: Run, what: str) -> Run:
    if run.code != 0:
        raise SystemExit(f"benchmarks/run.py: {what} failed (exit {run.code}):\n{run.output[-6000:]}")
    return run


def executed(site: Path) -> int:
    """Snippets this build ran (not served from the cache), from the site's executions.json."""
    rows = json.loads((site / "executions.json").read_text(encoding="utf-8"))
    return sum(1 for row in rows if not row["cached"])


# --------------------------------------------------------------------------------------------------
# The project's copies


def copy_project(dest: Path, exclude: tuple[str, ...] = (), source: Path = REPO) -> Path:
    source = source.resolve()
    excluded = {(source / rel).resolve() for rel in exclude}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(SKIP_ANY(folder, names))
        if Path(folder).resolve() == source:
            skipped |= SKIP_TOP.intersection(names)
        skipped |= {name for name in names if (Path(folder) / name).resolve() in excluded}
        return skipped

    shutil.copytree(source, dest, ignore=ignore, symlinks=True)
    return dest


def write_plain_config(project: Path) -> Path:
    """``mkdocs.yml`` without the execution plugin (``- spaces:`` and its options): the same site
    minus what the snippets add."""
    lines = (project / "mkdocs.yml").read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == PLUGIN_LINE]
    if len(starts) != 1:
        raise SystemExit(f"benchmarks/run.py: expected one '{PLUGIN_LINE}' line in mkdocs.yml")
    start = end = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    while end + 1 < len(lines) and (not lines[end + 1].strip()
                                    or len(lines[end + 1]) - len(lines[end + 1].lstrip()) > indent):
        end += 1
    path = project / PLAIN_CONFIG
    path.write_text("".join(lines[:start] + lines[end + 1:]), encoding="utf-8")
    return path


def without_page_cache(mkdocs_yml: str) -> str:
    """``mkdocs.yml`` with ``page_cache: false`` among the execution plugin's options."""
    lines = mkdocs_yml.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == PLUGIN_LINE]
    if len(starts) != 1:
        raise SystemExit(f"benchmarks/run.py: expected one '{PLUGIN_LINE}' line in mkdocs.yml")
    indent = len(lines[starts[0]]) - len(lines[starts[0]].lstrip()) + 4
    lines.insert(starts[0] + 1, " " * indent + "page_cache: false\n")
    return "".join(lines)


def module_importers(project: Path) -> dict[str, int]:
    """``spaces_code`` module -> how many snippets imported it (recorded in the cache entries)."""
    counts: dict[str, int] = {}
    for path in (project / ".cache" / "snippets").rglob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        for kind, rel, _ in entry.get("deps", []):
            if kind == "file" and rel.startswith("spaces_code/") and rel.endswith(".py"):
                counts[rel] = counts.get(rel, 0) + 1
    return counts


def importers_of(project: Path, module: str) -> set[str]:
    """The snippets whose cache entries record an import of ``module``."""
    found = set()
    for path in (project / ".cache" / "snippets").rglob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        if any(kind == "file" and rel == module for kind, rel, _ in entry.get("deps", [])):
            found.add(entry["snippet"])
    return found


def recorded_seconds(project: Path) -> list[tuple[str, float]]:
    """``(snippet, seconds)`` of every cache entry: what the shard planner balances."""
    items = {}
    for path in (project / ".cache" / "snippets").rglob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        items[entry["snippet"]] = float(entry.get("seconds") or 0.0)
    return sorted(items.items())


def shard_balance(project: Path, n: int = 4) -> float:
    from spaces_build import shard

    return round(shard.balance(recorded_seconds(project), n), 3)


def merge_caches(shards: list[Path], dest: Path) -> None:
    """Copy the shards' cache entries and figures (``.cache/snippets``, ``.cache/snippet-figures``) into
    dest's; a path present twice must hold the same bytes (content-addressed: conflict-free by
    construction, checked here). The rest of ``.cache`` is per machine and not merged."""
    for shard_root in shards:
        for path in sorted(p for folder in ("snippets", "snippet-figures")
                           for p in (shard_root / ".cache" / folder).rglob("*")):
            if path.is_dir() or path.name.endswith(".tmp"):
                continue
            target = dest / ".cache" / path.relative_to(shard_root / ".cache")
            if target.exists():
                if target.read_bytes() != path.read_bytes():
                    raise SystemExit(f"benchmarks/run.py: merge conflict at {target}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def shard_simulation(work: Path, exclude: tuple[str, ...], n: int, jobs: int, device: str,
                     reference: Path, reference_site: Path, source: Path = REPO) -> dict:
    """The publish workflow on fresh copies; compared with ``reference`` (a cold build of the same tree)."""
    from spaces_build.reproducible import compare

    shards, seconds = [], []
    for k in range(1, n + 1):
        root = copy_project(work / f"shard-{k}", exclude, source)
        run = check(run_build(spaces_cmd("--execute-only", "--shard", f"{k}/{n}", "--jobs", str(jobs),
                                         "--device", device), root), f"shard {k}/{n}")
        shards.append(root)
        seconds.append(round(run.wall, 2))
    merged = copy_project(work / "shard-merged", exclude, source)
    merge_caches(shards, merged)
    site = work / "shard-merged-site"
    build = check(run_build(spaces_cmd("--no-execute", "--site-dir", str(site), "--device", device), merged),
                  "build of the merged shard caches")
    problems = compare(reference, merged, reference_site, site)
    return {"shard_merge_identical": not problems and executed(site) == 0,
            "shard_merge_differences": problems[:20], "shard_seconds": seconds,
            "shard_merged_build_seconds": round(build.wall, 2), "shard_count": n}


def stale_pages(project: Path, site: Path, module: str) -> int:
    """Pages showing output of a snippet that imports ``module`` and was served from the cache by the
    build that followed the module's touch (``peers.py``'s definition, for our engine)."""
    users = importers_of(project, module)
    rows = json.loads((site / "executions.json").read_text(encoding="utf-8"))
    cached = {row["snippet"] for row in rows if row["cached"]}
    stale = 0
    for path in sorted((project / "docs" / "posts").glob("*.md")):
        shown = [rel for kind, rel in peers._split(path.read_text(encoding="utf-8")) if kind == "snippet"]
        stale += any(rel in users and rel in cached for rel in shown)
    return stale


def pick_module(counts: dict[str, int], snippets: int) -> str:
    """The module with most importers among those not imported by (nearly) every snippet."""
    candidates = {rel: n for rel, n in counts.items()
                  if not rel.endswith("__init__.py") and n <= snippets // 2}
    return max(sorted(candidates), key=lambda rel: candidates[rel])


def pick_snippet(site: Path) -> str:
    """The quickest snippet that does not measure time: touching it costs least."""
    rows = json.loads((site / "executions.json").read_text(encoding="utf-8"))
    rows = [r for r in rows if r["status"] == "ok" and not r.get("timing_dependent")]
    return min(rows, key=lambda r: (r["seconds"] or 0, r["snippet"]))["snippet"]


# --------------------------------------------------------------------------------------------------
# Reader side


# Debian's chromium, driven by playwright the way tests/browser_helpers.py does it (``executable_path``:
# nothing downloaded, ``playwright install`` never needed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-extensions",
                 "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]

# Installed before the page's own scripts: the moment the first ``mjx-container`` (a formula typeset at
# build time, part of the HTML) is in the document is kept in window.__spacesMathAt. Nothing typesets
# in the browser any more: this measures how soon the first formula is there, as the parser inserts it.
MATH_PROBE = r"""
(() => {
  const seen = () => {
    if (window.__spacesMathAt === undefined && document.querySelector("mjx-container")) {
      window.__spacesMathAt = performance.now();
      return true;
    }
    return window.__spacesMathAt !== undefined;
  };
  const observer = new MutationObserver(() => { if (seen()) observer.disconnect(); });
  observer.observe(document, {childList: true, subtree: true});
  document.addEventListener("DOMContentLoaded", seen);
})();
"""
PAGE_STATS = r"""
async () => {
  const deadline = Date.now() + 10000;
  while (window.__spacesMathAt === undefined && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 10));
  }
  const nav = performance.getEntriesByType("navigation")[0];
  return {math: window.__spacesMathAt ?? null,
          formulas: document.querySelectorAll("mjx-container").length,
          mathjax: typeof window.MathJax !== "undefined" && !!(window.MathJax && window.MathJax.startup),
          dcl: nav ? nav.domContentLoadedEventEnd : null, load: nav ? nav.loadEventEnd : null};
}
"""


class _Traffic:
    """What the local server sent since the last reset: per request, its path and bytes (headers and
    body)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests, self.inflight, self.last = [], 0, time.monotonic()

    def wait_idle(self, quiet: float = 0.5, limit: float = 15.0) -> None:
        """Until no request has been in flight for ``quiet`` seconds (fonts and the search index
        load after the page; the search worker's requests are seen here, by the server)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self.lock:
                if not self.inflight and time.monotonic() - self.last >= quiet:
                    return
            time.sleep(0.05)


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site like a plain static host (no compression) and counts what it sends."""

    traffic: _Traffic

    def handle_one_request(self):
        with self.traffic.lock:
            self.traffic.inflight += 1
        try:
            super().handle_one_request()
        finally:
            with self.traffic.lock:
                self.traffic.inflight -= 1
                self.traffic.last = time.monotonic()

    def end_headers(self):
        with self.traffic.lock:
            self._entry = [unquote(urlparse(self.path).path),
                           sum(len(h) for h in getattr(self, "_headers_buffer", [])) + 2]
            self.traffic.requests.append(self._entry)
        super().end_headers()

    def copyfile(self, source, outputfile):
        while chunk := source.read(1 << 16):
            outputfile.write(chunk)
            with self.traffic.lock:
                self._entry[1] += len(chunk)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def is_page_code(path: str) -> bool:
    """The article's HTML document, a script or a stylesheet (the search index, fonts, images: no)."""
    return path.endswith(("/", ".html", ".js", ".css"))


def reader_side(site: Path, slugs: list[str]) -> dict:
    """Each article page as a first visit (a new browser context: empty cache): bytes the server sent
    for it (everything, and the HTML + scripts + stylesheets alone), and the time until its first
    pre-rendered formula is in the document."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"reader_error": "chromium is not installed (apt-get install -y chromium)"}
    from playwright.sync_api import sync_playwright

    traffic = _Traffic()
    handler = type("Handler", (_CountingHandler,), {"traffic": traffic})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    gz_sizes: dict[str, int] = {}
    pages = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                for slug in slugs:
                    traffic.wait_idle(quiet=0.2)
                    traffic.reset()
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    context.add_init_script(MATH_PROBE)
                    page = context.new_page()
                    scripts: list[str] = []
                    page.on("request", lambda r: r.resource_type == "script" and scripts.append(r.url))
                    page.goto(urljoin(base, f"{slug}/"), wait_until="load")
                    stats = page.evaluate(PAGE_STATS)
                    traffic.wait_idle()
                    context.close()
                    with traffic.lock:
                        requests = [tuple(r) for r in traffic.requests]
                    gz = 0
                    for path, _ in requests:
                        if path not in gz_sizes:
                            file = site / path.lstrip("/")
                            file = file / "index.html" if file.is_dir() else file
                            gz_sizes[path] = len(gzip.compress(file.read_bytes(), 6)) if file.is_file() else 0
                        gz += gz_sizes[path]
                    pages.append({"slug": slug, "requests": len(requests), "bytes": sum(b for _, b in requests),
                                  "html_js_css_bytes": sum(b for p, b in requests if is_page_code(p)),
                                  "gzip_bytes": gz, "first_formula_ms": stats["math"],
                                  "formulas": stats["formulas"], "mathjax_running": stats["mathjax"],
                                  "mathjax_scripts": [u for u in scripts if "mathjax" in u.lower()],
                                  "dom_content_loaded_ms": stats["dcl"], "load_ms": stats["load"],
                                  "served": sorted(requests, key=lambda r: -r[1])})
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    math = [p["first_formula_ms"] for p in pages if p["first_formula_ms"] is not None]
    return {
        "reader_pages": len(pages),
        "reader_bytes_median": statistics.median(p["bytes"] for p in pages),
        "reader_html_js_css_bytes_median": statistics.median(p["html_js_css_bytes"] for p in pages),
        "reader_gzip_bytes_median": statistics.median(p["gzip_bytes"] for p in pages),
        "reader_requests_median": statistics.median(p["requests"] for p in pages),
        "reader_typeset_ms_median": round(statistics.median(math), 1) if math else None,
        "reader_typeset_ms_max": round(max(math), 1) if math else None,
        "reader_pages_without_formulas": len(pages) - len(math),
        "reader_mathjax_pages": sum(1 for p in pages if p["mathjax_running"] or p["mathjax_scripts"]),
        "reader_per_page": pages,
    }


def post_slugs(project: Path) -> list[str]:
    import yaml

    slugs = []
    for path in sorted((project / "docs" / "posts").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        meta = yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") else {}
        slugs.append(str((meta or {}).get("slug") or path.stem))
    return slugs


# --------------------------------------------------------------------------------------------------
# The suite


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = round(mem_kb / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": mem, "python": platform.python_version(),
            "platform": platform.platform()}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class OtherWork:
    """How many cores other work on the machine kept busy, per scenario: the machine's busy CPU time
    (``/proc/stat``) minus this benchmark's own (its process and the builds it waited for), over the
    scenario's wall time. 0 means the machine was ours; on 2 cores, 1 means half of it was not."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.by_scenario: dict[str, float | None] = {}
        self.start = self._now()

    def _now(self):
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.tick  # all but idle and iowait
        except (OSError, ValueError, IndexError):
            busy = None
        import resource

        ours = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for f in ("ru_utime", "ru_stime"))
        return time.perf_counter(), busy, ours

    def mark(self, scenario: str) -> None:
        (t0, busy0, ours0), (t1, busy1, ours1) = self.start, self._now()
        self.start = (t1, busy1, ours1)
        if busy0 is None or busy1 is None or t1 <= t0:
            self.by_scenario[scenario] = None
        else:
            self.by_scenario[scenario] = round(max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0), 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--skip-scale", action="store_true", help="no synthetic 100/1,000-article builds")
    ap.add_argument("--skip-reader", action="store_true", help="no headless-Chromium page measurements")
    ap.add_argument("--skip-parallel", action="store_true", help="no second cold build with --jobs 1")
    ap.add_argument("--skip-preload", action="store_true", help="no third cold build with --no-preload")
    ap.add_argument("--skip-shards", action="store_true", help="no simulation of sharded execution")
    ap.add_argument("--skip-peers", action="store_true", help="no markdown-exec / mkdocs-jupyter builds")
    ap.add_argument("--skip-warm", action="store_true", help="no warm rebuilds and plain mkdocs builds")
    ap.add_argument("--skip-touch", action="store_true", help="no builds after touching a snippet and a module")
    ap.add_argument("--repeat", type=int, default=5, help="timed warm and plain builds each (default 5)")
    ap.add_argument("--scale", default="100,1000", help="the two synthetic sizes (default 100,1000)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="jobs of the cold builds")
    ap.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--exclude", action="append", default=[], metavar="PATH",
                    help="leave this file or folder of the working tree out of the copy (e.g. work in progress)")
    args = ap.parse_args(argv)
    if not args.skip_peers and (args.skip_warm or args.skip_touch):
        ap.error("the peers scenario compares with the warm and touch scenarios: add --skip-peers")
    small, large = (int(n) for n in args.scale.split(","))

    work = Path(tempfile.mkdtemp(prefix="spaces-bench-"))
    results: dict = {"date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                     "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
                     "machine": machine(), "load_before": load(), "jobs": args.jobs}
    say = partial(print, file=sys.stderr, flush=True)
    other = OtherWork()
    results["other_work_cores"] = other.by_scenario
    try:
        project = copy_project(work / "project", tuple(args.exclude))
        plain = copy_project(work / "plain", tuple(args.exclude))
        write_plain_config(plain)
        site = work / "site"

        say(f"[bench] cold build of the archive (--jobs {args.jobs}) in {project}")
        cold = check(run_build(build_cmd(site, args.jobs, args.device), project), "cold build")
        snippets = len(json.loads((site / "executions.json").read_text(encoding="utf-8")))
        results.update(cold_seconds=round(cold.wall, 2), cold_cpu_seconds=round(cold.cpu, 2),
                       cold_executed=executed(site), snippets=snippets,
                       cold_execution_phase_seconds=cold.exec_phase(),
                       peak_memory_mb=cold.peak_mb, peak_tree_memory_mb=cold.tree_peak_mb,
                       peak_tree_pss_mb=cold.tree_pss_mb)
        rows = json.loads((site / "executions.json").read_text(encoding="utf-8"))
        slowest = sorted(rows, key=lambda r: -(r["seconds"] or 0))[:5]
        results["slowest_snippets"] = [[r["snippet"], r["seconds"], r["peak_memory_mb"]] for r in slowest]
        results["snippet_seconds_total"] = round(sum(r["seconds"] or 0 for r in rows), 2)
        results["snippet_peak_memory_mb_max"] = max((r["peak_memory_mb"] or 0) for r in rows)
        results["device"] = rows[0]["device"] if rows else None
        other.mark("cold")

        if not args.skip_parallel:
            say("[bench] cold build again with --jobs 1 (its execution phase over the first one's)")
            for cache in ("snippets", "snippet-figures"):
                shutil.rmtree(project / ".cache" / cache, ignore_errors=True)
            serial = check(run_build(build_cmd(work / "site-jobs1", 1, args.device), project), "--jobs 1 build")
            results.update(cold_jobs1_seconds=round(serial.wall, 2),
                           cold_jobs1_execution_phase_seconds=serial.exec_phase())
            if serial.exec_phase() and cold.exec_phase():
                results["parallel_speedup"] = round(serial.exec_phase() / cold.exec_phase(), 3)
            results["parallel_jobs"] = args.jobs
            other.mark("jobs1")

        reference, reference_site = project, work / ("site-jobs1" if not args.skip_parallel else "site")
        if not args.skip_preload:
            say("[bench] cold build again with --no-preload (its execution phase over the first one's)")
            for cache in ("snippets", "snippet-figures"):
                shutil.rmtree(project / ".cache" / cache, ignore_errors=True)
            plain_start = check(run_build(build_cmd(work / "site-nopreload", args.jobs, args.device, "--no-preload"),
                                          project), "--no-preload build")
            reference_site = work / "site-nopreload"
            results.update(cold_no_preload_seconds=round(plain_start.wall, 2),
                           cold_no_preload_execution_phase_seconds=plain_start.exec_phase())
            if plain_start.exec_phase() and cold.exec_phase():
                results["preload_speedup"] = round(plain_start.exec_phase() / cold.exec_phase(), 3)
            results["preload_cold_speedup"] = round(plain_start.wall / cold.wall, 3)
            other.mark("no_preload")
        results["shard_balance_archive"] = shard_balance(project)

        if not args.skip_shards:
            say("[bench] sharded execution: 4 shards on fresh copies, caches merged, a build executing nothing")
            # copies of the benchmark's own copy, not of the working tree: a file edited meanwhile
            # (a live tree) would leave a snippet of the merged tree that no shard executed
            results.update(shard_simulation(work, tuple(args.exclude), 4, args.jobs, args.device,
                                            reference, reference_site, source=project))
            for k in range(1, 5):
                shutil.rmtree(work / f"shard-{k}", ignore_errors=True)
            other.mark("shards")

        warm_cmd = build_cmd(site, args.jobs, args.device)
        if not args.skip_warm:
            say(f"[bench] warm rebuilds and plain mkdocs builds, {args.repeat} each (+1 untimed each)")
            plain_cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", PLAIN_CONFIG,
                         "--site-dir", str(work / "plain-site")]
            warm_runs, plain_runs = [], []
            for i in range(args.repeat + 1):
                w = check(run_build(warm_cmd, project), "warm build")
                if executed(site):
                    raise SystemExit(f"benchmarks/run.py: the warm build executed {executed(site)} snippets")
                p = check(run_build(plain_cmd, plain), "plain mkdocs build")
                if i:
                    warm_runs.append(w)
                    plain_runs.append(p)
            warm = statistics.median(r.wall for r in warm_runs)
            plain_s = statistics.median(r.wall for r in plain_runs)
            warm_cpu = statistics.median(r.cpu for r in warm_runs)
            plain_cpu = statistics.median(r.cpu for r in plain_runs)
            # Each warm build and the plain build right after it share the machine's load of that moment:
            # the median of these paired ratios is what other work on the machine disturbs least.
            paired = statistics.median(w.wall / p.wall for w, p in zip(warm_runs, plain_runs))
            results.update(
                warm_seconds=round(warm, 2), plain_mkdocs_seconds=round(plain_s, 2),
                warm_over_plain=round(paired, 3), warm_over_plain_of_medians=round(warm / plain_s, 3),
                warm_cpu_seconds=round(warm_cpu, 2), plain_mkdocs_cpu_seconds=round(plain_cpu, 2),
                warm_over_plain_cpu=round(warm_cpu / plain_cpu, 3),
                warm_runs=[round(r.wall, 2) for r in warm_runs], plain_runs=[round(r.wall, 2) for r in plain_runs],
                warm_cache_check_seconds=statistics.median(r.cache_check() or 0 for r in warm_runs),
                warm_generated_pages=[list(r.generated_pages() or ()) for r in warm_runs],
                warm_peak_memory_mb=max(r.peak_mb or 0 for r in warm_runs))
            # The same pairs with the page cache off (page_cache: false): every generated page rendered.
            config_file = project / "mkdocs.yml"
            original = config_file.read_text(encoding="utf-8")
            config_file.write_text(without_page_cache(original), encoding="utf-8")
            try:
                nocache_runs, nocache_plain = [], []
                for i in range(min(args.repeat, 3) + 1):
                    w = check(run_build(warm_cmd, project), "warm build without the page cache")
                    p = check(run_build(plain_cmd, plain), "plain mkdocs build")
                    if i:
                        nocache_runs.append(w)
                        nocache_plain.append(p)
            finally:
                config_file.write_text(original, encoding="utf-8")
            results.update(
                warm_without_page_cache_seconds=round(statistics.median(r.wall for r in nocache_runs), 2),
                warm_over_plain_without_page_cache=round(statistics.median(
                    w.wall / p.wall for w, p in zip(nocache_runs, nocache_plain)), 3),
                warm_without_page_cache_generated_pages=[list(r.generated_pages() or ()) for r in nocache_runs])
            other.mark("warm_and_plain")

        if not args.skip_touch:
            rel = pick_snippet(site)
            say(f"[bench] touch one snippet: {rel}")
            with open(project / rel, "a", encoding="utf-8") as fh:
                fh.write(TOUCH)
            touched = check(run_build(warm_cmd, project), "build after touching a snippet")
            results.update(touch_one_snippet=rel, touch_one_snippet_executed=executed(site),
                           touch_one_snippet_seconds=round(touched.wall, 2))

            counts = module_importers(project)
            module = pick_module(counts, snippets)
            say(f"[bench] touch one module: {module} ({counts[module]} snippets import it)")
            with open(project / module, "a", encoding="utf-8") as fh:
                fh.write(TOUCH)
            touched = check(run_build(warm_cmd, project), "build after touching a module")
            results.update(touch_one_module=module, touch_one_module_importers=counts[module],
                           touch_one_module_executed=executed(site),
                           touch_one_module_seconds=round(touched.wall, 2),
                           touch_one_module_stale_pages=stale_pages(project, site, module))
            other.mark("touch")

        if not args.skip_peers:
            say(f"[bench] peers: markdown-exec and mkdocs-jupyter on the same pages, touching {module}")
            peer_project = copy_project(work / "peers-project", tuple(args.exclude))
            results["peers"] = peers.measure(peer_project, module, importers_of(project, module),
                                             dest=work / "peers")
            results["peers"]["spaces"] = {
                "cold_seconds": results["cold_seconds"], "warm_seconds": results["warm_seconds"],
                "executed_after_touch": results["touch_one_module_executed"],
                "stale_pages_after_touch": results["touch_one_module_stale_pages"],
                "snippets": snippets}
            shutil.rmtree(work / "peers", ignore_errors=True)
            other.mark("peers")

        if not args.skip_reader:
            say(f"[bench] reader side: {len(post_slugs(project))} article pages in headless Chromium")
            results.update(reader_side(site, post_slugs(project)))
            other.mark("reader")

        if not args.skip_scale:
            for n in (small, large):
                say(f"[bench] synthetic archive of {n} articles: cold build, then a warm one")
                root = synthetic.generate(work / f"synthetic-{n}", n)
                cold_n = check(run_build(build_cmd(work / f"synthetic-{n}-site", args.jobs, args.device), root),
                               f"cold build of {n} synthetic articles")
                warm_n = check(run_build(build_cmd(work / f"synthetic-{n}-site", args.jobs, args.device), root),
                               f"warm build of {n} synthetic articles")
                results.update({f"scale_{n}_seconds": round(cold_n.wall, 2),
                                f"scale_{n}_cpu_seconds": round(cold_n.cpu, 2),
                                f"scale_{n}_execution_phase_seconds": cold_n.exec_phase(),
                                f"scale_{n}_warm_seconds": round(warm_n.wall, 2),
                                f"scale_{n}_peak_memory_mb": cold_n.peak_mb})
                shutil.rmtree(work / f"synthetic-{n}-site", ignore_errors=True)
                if n == large:
                    results["shard_balance"] = shard_balance(root)
                    results["shard_balance_articles"] = n
                other.mark(f"scale_{n}")
            results[f"scale_{large}_over_{small}"] = round(
                results[f"scale_{large}_seconds"] / results[f"scale_{small}_seconds"], 3)
            results[f"scale_{large}_over_{small}_cpu"] = round(
                results[f"scale_{large}_cpu_seconds"] / results[f"scale_{small}_cpu_seconds"], 3)
            results[f"scale_{large}_over_{small}_warm"] = round(
                results[f"scale_{large}_warm_seconds"] / results[f"scale_{small}_warm_seconds"], 3)
    finally:
        results["load_after"] = load()
        if args.keep:
            say(f"[bench] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


ROWS = [
    ("cold_seconds", "cold build, every snippet executed (s)", "< 300"),
    ("cold_execution_phase_seconds", "  of which snippet execution (s)", None),
    ("peak_memory_mb", "  peak memory of the build process (MB)", None),
    ("peak_tree_memory_mb", "  peak memory, build + snippet processes, RSS summed (MB)", None),
    ("peak_tree_pss_mb", "  the same, PSS summed: shared pages counted once (MB)", None),
    ("warm_seconds", "warm rebuild, nothing changed (s, median)", None),
    ("plain_mkdocs_seconds", "plain mkdocs build, no execution hook (s, median)", None),
    ("warm_over_plain", "warm / plain", "<= 1.1"),
    ("warm_over_plain_cpu", "warm / plain, CPU time", None),
    ("warm_over_plain_without_page_cache", "warm / plain with page_cache: false", None),
    ("warm_cache_check_seconds", "  of the warm build: the cache check (s)", None),
    ("cold_no_preload_execution_phase_seconds", "snippet execution with --no-preload (s)", None),
    ("preload_speedup", "preload speedup (--no-preload / preload, execution)", ">= 2.5"),
    ("preload_cold_speedup", "preload speedup, whole cold build", ">= 1.8"),
    ("shard_merge_identical", "4 shards merged == single build", "true"),
    ("shard_balance", "longest / mean of 4 shards, 1,000 articles (predicted)", "<= 1.15"),
    ("shard_balance_archive", "longest / mean of 4 shards, the 40 articles", None),
    ("touch_one_snippet_executed", "snippets run after touching one snippet", "== 1"),
    ("touch_one_module_executed", "snippets run after touching one module", "== importers"),
    ("touch_one_module_importers", "  snippets importing that module", None),
    ("touch_one_module_stale_pages", "  pages left showing stale output", "== 0"),
    ("cold_jobs1_execution_phase_seconds", "snippet execution with --jobs 1 (s)", None),
    ("parallel_speedup", "parallel speedup (--jobs 1 / --jobs N, execution)", ">= 1.5"),
    ("scale_100_seconds", "cold build, 100 synthetic articles (s)", None),
    ("scale_1000_seconds", "cold build, 1,000 synthetic articles (s)", None),
    ("scale_1000_over_100", "1,000 / 100", "<= 11"),
    ("scale_1000_over_100_cpu", "1,000 / 100, CPU time", None),
    ("scale_1000_over_100_warm", "1,000 / 100, warm rebuilds", None),
    ("reader_bytes_median", "article page, first visit: bytes, all requests (median)", "<= 800,000"),
    ("reader_html_js_css_bytes_median", "  of which its HTML, scripts, stylesheets (median)", "<= 500,000"),
    ("reader_gzip_bytes_median", "  all requests' files gzipped (median)", None),
    ("reader_typeset_ms_median", "article page: ms until the first formula is there (median)", None),
    ("reader_mathjax_pages", "  article pages loading MathJax", "== 0"),
]


def table(results: dict) -> str:
    lines = [f"Spaces build benchmark, {results['date']}, {results['machine']['cores']} cores "
             f"({results['machine']['cpu']}), load {results['load_before']} -> {results.get('load_after')}",
             f"{'scenario':54} {'value':>12}  target", "-" * 80]
    for key, label, target in ROWS:
        if key in results and results[key] is not None:
            value = results[key]
            if isinstance(value, bool):
                text = str(value).lower()
            else:
                text = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
            lines.append(f"{label:54} {text:>12}  {target or ''}")
    if results.get("peers"):
        lines.append(f"{'peers':16} {'cold (s)':>10} {'warm (s)':>10} {'executed after touch':>22} {'stale pages':>12}")
        for name, row in results["peers"].items():
            lines.append(f"{name:16} {row['cold_seconds']:>10} {row['warm_seconds']:>10} "
                         f"{row['executed_after_touch']:>22} {row['stale_pages_after_touch']:>12}")
    busy = results.get("other_work_cores") or {}
    if busy:
        lines.append("other work on the machine, cores busy on average: "
                     + ", ".join(f"{k} {v}" for k, v in busy.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
