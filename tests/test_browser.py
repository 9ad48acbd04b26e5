"""Every article page in headless Chromium: all formulas typeset, none broken, nothing from other hosts.

Debian's ``chromium`` (``make test`` installs it when missing) is driven through the DevTools
protocol over a pipe (``--remote-debugging-pipe``): no driver, no extra package. One browser opens
every post over a local HTTP server (``site_server`` in conftest.py) and, once MathJax has finished
(``window.spacesMath.runs``, set by docs/javascripts/mathjax.js), asserts:

- 0 MathJax errors (``mjx-merror`` / ``merror``), 0 undefined macros (MathJax shows them as red
  text: ``mathcolor="red"``), 0 unresolved references (``???`` from ``\\eqref``);
- no raw LaTeX in the visible text; as many typeset formulas (``mjx-container``) as the post's
  Markdown holds, each ``.arithmatex`` element typeset;
- every request went to the local server, none failed, no JavaScript error.

Instant navigation (Material swaps pages without reloading scripts) is checked too: the pages
reached by clicking keep the same guarantees.
"""
from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from urllib.parse import urljoin

import pytest

from site_helpers import formulas, post_files, split_post, split_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,900"]
POSTS = [(p.name, split_post(p)[0]["slug"]) for p in post_files()]
PAGE_TIMEOUT = 60.0


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Chromium:
    """A minimal DevTools-protocol client over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="spaces-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child's ends move above fd 9 so that "3<&N 4>&M" cannot clobber one with the other (bash: dash takes one-digit fds only)
        to_chrome_r, from_chrome_w = (_high_fd(to_chrome_r), _high_fd(from_chrome_w))
        args = [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                "about:blank"]
        # the browser reads commands on fd 3 and writes answers on fd 4
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', *args],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._answers: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        box = self._answers.get(msg["id"])
                    if box is not None:
                        box.put(msg)
                else:
                    self.events.append(msg)
        with self._lock:
            for box in self._answers.values():
                box.put({"error": {"message": "browser closed the pipe"}})

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = PAGE_TIMEOUT) -> dict:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            box = self._answers[msg_id] = queue.Queue()
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        try:
            answer = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to {method} within {timeout}s") from None
        finally:
            with self._lock:
                self._answers.pop(msg_id, None)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - best effort, killed below anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self._to_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    def __init__(self, browser: Chromium):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send("Network.setCacheDisabled", {"cacheDisabled": False})
        self.mark = 0

    def send(self, method, params=None, timeout=PAGE_TIMEOUT):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def events_since_mark(self) -> list[dict]:
        return [e for e in self.browser.events[self.mark:] if e.get("sessionId") == self.session]

    def start_recording(self) -> None:
        self.mark = len(self.browser.events)

    def goto(self, url: str) -> None:
        self.start_recording()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + PAGE_TIMEOUT
        while not any(e["method"] == "Page.loadEventFired" for e in self.events_since_mark()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.02)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": PAGE_TIMEOUT * 1000})
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self, base_url: str) -> list[str]:
        """Requests to other hosts, failed requests and JavaScript errors since the last mark."""
        out = []
        for e in self.events_since_mark():
            p = e.get("params", {})
            if e["method"] == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith((base_url, "data:", "blob:", "about:")):
                    out.append(f"request to another host: {url}")
            elif e["method"] == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
            elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"failed request: {p.get('errorText')} ({p.get('requestId')})")
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(f"JavaScript exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append("console error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        return out


# Waits for MathJax (at least `runs` finished passes) and inspects the article.
INSPECT = r"""
(async (minRuns) => {
  const deadline = Date.now() + %(timeout)d;
  while (!(window.spacesMath && window.spacesMath.runs >= minRuns)) {
    if (Date.now() > deadline) return {timeout: true, runs: window.spacesMath ? window.spacesMath.runs : null};
    await new Promise(r => setTimeout(r, 25));
  }
  await MathJax.startup.promise;
  const scope = document.querySelector("article.md-content__inner") || document.body;
  const arith = Array.from(scope.querySelectorAll(".arithmatex"));
  const mml = [];
  for (const item of MathJax.startup.document.math) {
    if (scope.contains(item.typesetRoot)) mml.push(MathJax.startup.toMML(item.root));
  }
  const red = Array.from(scope.querySelectorAll("mjx-container *")).filter(
    el => getComputedStyle(el).color === "rgb(255, 0, 0)").length;
  // visible text outside formulas and code
  const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el && el !== scope.parentElement; el = el.parentElement) {
        if (el.matches("mjx-container, pre, code, script, style, .snippet-output")) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode.nodeValue);
  return {
    path: location.pathname,
    runs: window.spacesMath.runs,
    containers: scope.querySelectorAll("mjx-container").length,
    arithmatex: arith.length,
    untypeset: arith.filter(el => !el.querySelector("mjx-container")).length,
    mjxErrors: scope.querySelectorAll("mjx-merror").length,
    mml: mml,
    red: red,
    text: texts.join(""),
  };
})(%(runs)d)
"""

RAW_LATEX = [r"\\[A-Za-z]+", r"\$\$", r"\$[^$\s][^$]*\$", r"\\\(", r"\\\[", r"[_^]\{"]


def expected_formulas(built_posts, name: str) -> set[int]:
    """How many formulas the post's Markdown holds (the text the build read; see conftest)."""
    return {len(formulas(split_text(text)[1])) for text in built_posts[name]}


def check(stats: dict, expected: set[int] | None, where: str) -> list[str]:
    import re

    if stats.get("timeout"):
        return [f"{where}: MathJax did not finish (runs={stats.get('runs')})"]
    out = []
    if stats["mjxErrors"]:
        out.append(f"{where}: {stats['mjxErrors']} MathJax errors (mjx-merror)")
    for mml in stats["mml"]:
        if "<merror" in mml:
            out.append(f"{where}: MathJax error in {mml[:200]}")
        if re.search(r'mathcolor="red"', mml):
            out.append(f"{where}: undefined macro (red) in {mml[:300]}")
        if "???" in mml:
            out.append(f"{where}: unresolved reference (???) in {mml[:300]}")
    if stats["red"]:
        out.append(f"{where}: {stats['red']} red elements in formulas (undefined macros)")
    if stats["untypeset"]:
        out.append(f"{where}: {stats['untypeset']} formulas left untypeset")
    if stats["containers"] != stats["arithmatex"]:
        out.append(f"{where}: {stats['containers']} typeset formulas for {stats['arithmatex']} .arithmatex")
    if expected is not None and stats["containers"] not in expected:
        out.append(f"{where}: {stats['containers']} typeset formulas, "
                   f"the Markdown has {' or '.join(map(str, sorted(expected)))}")
    if len(stats["mml"]) != stats["containers"]:
        out.append(f"{where}: MathJax knows {len(stats['mml'])} formulas, the page shows {stats['containers']}")
    for pattern in RAW_LATEX:
        m = re.search(pattern, stats["text"])
        if m:
            start = max(0, m.start() - 30)
            out.append(f"{where}: raw LaTeX in the visible text: …{stats['text'][start:m.end() + 30]}…")
    if "???" in stats["text"]:
        out.append(f"{where}: ??? in the visible text")
    return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium "
                    "(apt-get install -y chromium)", pytrace=False)
    b = Chromium(CHROMIUM)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def tab(browser):
    return Tab(browser)


def inspect(tab: Tab, runs: int = 1) -> dict:
    return tab.evaluate(INSPECT % {"timeout": int(PAGE_TIMEOUT * 1000), "runs": runs})


def test_every_article_page(tab, site_server, built_posts):
    problems, typeset = [], 0
    for name, slug in POSTS:
        tab.goto(urljoin(site_server, f"{slug}/"))
        stats = inspect(tab)
        problems += check(stats, expected_formulas(built_posts, name), slug)
        problems += [f"{slug}: {p}" for p in tab.problems(site_server)]
        typeset += stats["containers"]
    assert not problems, "\n".join(problems)
    assert typeset >= 77, "the 40 excerpts alone hold 77 formulas"


def test_listing_pages(tab, site_server, built_site):
    """Home, its pagination, archive and category pages: excerpts typeset one by one, no clash."""
    pages = ["", *sorted(f"page/{p.name}/" for p in (built_site / "page").iterdir())]
    pages += sorted(str(p.parent.relative_to(built_site)) + "/" for p in built_site.glob("archive/*/*/index.html"))[:3]
    pages += sorted(str(p.parent.relative_to(built_site)) + "/" for p in built_site.glob("category/*/index.html"))
    problems, typeset = [], 0
    for path in pages:
        tab.goto(urljoin(site_server, path))
        stats = inspect(tab)
        problems += check(stats, None, path or "/")
        problems += [f"{path or '/'}: {p}" for p in tab.problems(site_server)]
        typeset += stats["containers"]
    assert not problems, "\n".join(problems)
    assert typeset > 0


def test_instant_navigation_typesets_the_new_page(tab, site_server, built_posts):
    """First load, then pages reached by clicking (Material's instant navigation, no reload)."""
    expected = {slug: expected_formulas(built_posts, name) for name, slug in POSTS}
    tab.goto(site_server)
    first = inspect(tab)
    problems = check(first, None, "/")
    # from the home page to a part of a series, then through the series box to the other parts
    route = [slug for slug in ("transformer-upgrade-4-2d-rope", "transformer-upgrade-1-sinusoidal",
                               "transformer-upgrade-3-linear-attention") if slug in expected]
    runs = first["runs"]
    tab.start_recording()
    while route:
        clicked = tab.evaluate(
            "((slugs) => { for (const a of document.querySelectorAll('article a[href]')) {"
            " const path = new URL(a.href, location.href).pathname;"
            " const slug = slugs.find(s => path.endsWith('/' + s + '/'));"
            " if (slug) { a.click(); return slug; } } return null; })(" + json.dumps(route) + ")")
        assert clicked, f"no link to any of {route} on the page"
        route.remove(clicked)
        stats = inspect(tab, runs + 1)
        assert stats.get("path", "").endswith(f"/{clicked}/"), f"instant navigation did not reach {clicked}: {stats}"
        problems += check(stats, expected[clicked], f"{clicked} (instant)")
        runs = stats["runs"]
    problems += tab.problems(site_server)
    navigations = [e for e in tab.events_since_mark() if e["method"] == "Page.frameNavigated"]
    assert not navigations, "the clicks reloaded the page instead of navigating instantly"
    assert not problems, "\n".join(problems)
