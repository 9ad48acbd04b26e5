"""Shared fixtures: every numerical test runs on CPU and, where a GPU is present, on CUDA.

Randomness. Every test that draws random numbers takes them from the ``seed`` or ``generator`` fixture
(never a literal seed), and the global RNGs (``random``, NumPy, torch, Keras) are seeded from the same
value before each test. The value is ``SPACES_TEST_SEED`` (default 1234): ``make test-seeds`` runs these
tests with 20 other seeds, so a threshold that holds only for one stream fails there. Tests that take
``seed``, ``generator`` or ``device`` are marked ``seeded`` (the set ``make test-seeds`` runs).

Devices. ``generator`` is a CPU generator whatever the test's device: inputs are drawn once on CPU and
moved to the device, so CUDA sees the numbers CPU sees and the two results can be compared.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest
import torch

CUDA = torch.cuda.is_available()
SEED = int(os.environ.get("SPACES_TEST_SEED", "1234"))

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda,
               pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")],
    ),
]

_SEEDED_FIXTURES = {"seed", "generator", "device"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _SEEDED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.seeded)


def pytest_report_header(config):
    return f"spaces: SPACES_TEST_SEED={SEED}"


@pytest.fixture(autouse=True)
def _seed_global_rngs():
    """Seed every global RNG from the test seed before each test (Keras too, once it is imported)."""
    random.seed(SEED)
    np.random.seed(SEED % 2**32)
    torch.manual_seed(SEED)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(SEED)
    yield


@pytest.fixture
def seed() -> int:
    """The test seed (``SPACES_TEST_SEED``, default 1234): use it wherever a test needs a seed."""
    return SEED


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Parametrises a test over cpu and cuda (the cuda case is marked ``cuda``)."""
    return torch.device(request.param)


@pytest.fixture
def one_cpu_thread():
    """One torch CPU thread for the test (tiny ops: two threads on a busy 2-core machine are much slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def generator(seed) -> torch.Generator:
    """A CPU generator seeded with the test seed: draw on CPU, then move to ``device``."""
    return torch.Generator(device="cpu").manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# Site tests (test_site.py, test_browser.py, test_links.py): the whole site is built ONCE per test run.

import functools  # noqa: E402
import http.server  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def _once_per_run(tmp_path_factory, name: str, make) -> dict:
    """``make(folder)`` once per test run, however many pytest-xdist workers share it.

    Session fixtures are per worker: under ``-n 2`` each worker would build its own copy. Here the
    first worker to ask builds into ``<run's basetemp>/<name>`` under a file lock; the others wait
    for it and read the same result (a JSON record, failures included: a failed build is not
    retried by the next worker). Without xdist it simply builds."""
    import fcntl
    import json

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the run's workers
    folder, record = base / name, base / f"{name}.json"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            result = make(folder)
            record.write_text(json.dumps(result), encoding="utf-8")
        return json.loads(record.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site, built once per test run, strictly, into a temporary folder; returns that folder.

    Uses ``spaces build`` (which executes stale snippets, then builds with ``--strict``). A failed build
    fails every site test with the build's output; the full log is written beside the folder
    (``<folder>.log``).
    """
    def build(site: Path) -> dict:
        before = _read_posts()
        cmd = [sys.executable, "-m", "spaces_build.cli", "build", "--site-dir", str(site)]
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
        (site.parent / f"{site.name}.log").write_text(
            f"$ {' '.join(cmd)}\n# exit {proc.returncode} after {seconds:.1f}s\n{proc.stdout}\n{proc.stderr}",
            encoding="utf-8")
        after = _read_posts()
        return {"site": str(site), "returncode": proc.returncode,
                "failure": f"site build failed ({' '.join(cmd)}, exit {proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}" if proc.returncode else "",
                "posts": {name: [text for text in dict.fromkeys((before.get(name), after.get(name))) if text]
                          for name in before.keys() | after.keys()}}

    result = _once_per_run(tmp_path_factory, "shared-site", build)
    if result["returncode"] != 0:
        pytest.fail(result["failure"], pytrace=False)
    site = Path(result["site"])
    _POSTS_AT_BUILD[site] = {name: tuple(texts) for name, texts in result["posts"].items()}
    return site


_POSTS_AT_BUILD: dict[Path, dict[str, tuple[str, ...]]] = {}


def _read_posts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "docs" / "posts").glob("*.md"))}


@pytest.fixture(scope="session")
def built_posts(built_site) -> dict[str, tuple[str, ...]]:
    """The Markdown of each post (file name -> texts) as the build may have read it.

    Other people append to posts while a build runs; the build read each file at some moment
    between the two snapshots taken just before and just after it, so its text is one of these
    (one text when the file did not change)."""
    return _POSTS_AT_BUILD[built_site]


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site; sitemap.xml is answered with this server's address in place of
    ``site_url`` (as ``mkdocs serve`` does), so Material's instant navigation, which only takes
    over links listed in the sitemap, works here as it does when deployed."""

    def do_GET(self):  # noqa: N802 - name of the base class's method
        if self.path.split("?")[0] != "/sitemap.xml":
            return super().do_GET()
        text = (Path(self.directory) / "sitemap.xml").read_text(encoding="utf-8")
        locs = re.findall(r"<loc>([^<]+)</loc>", text)
        root = min(locs, key=len) if locs else ""
        host, port = self.server.server_address[:2]
        body = text.replace(root, f"http://{host}:{port}/").encode("utf-8") if root else text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture(scope="session")
def site_server(built_site) -> str:
    """Base URL (``http://127.0.0.1:PORT/``) of a local HTTP server over the built site."""
    handler = functools.partial(_SiteHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def built_mini_archive(tmp_path_factory) -> Path:
    """The small archive of ``tests/mini_archive.py``, built once per test run from nothing
    (``spaces build``) and shared by the build tests: copy it (``shutil.copytree``, cache included)
    before changing it."""
    import mini_archive

    def build(folder: Path) -> dict:
        project = mini_archive.make(folder / "archive")
        proc = mini_archive.build(project)
        return {"project": str(project), "returncode": proc.returncode, "stderr": proc.stderr[-6000:]}

    result = _once_per_run(tmp_path_factory, "shared-mini-archive", build)
    if result["returncode"] != 0:
        pytest.fail(f"mini archive build failed:\n{result['stderr']}", pytrace=False)
    return Path(result["project"])


# --------------------------------------------------------------------------------------------------
# Parallel runs (pytest-xdist, ``-n 2``; ``make test`` does this). The shared builds above are made
# once per run (``_once_per_run``), whatever the number of workers. (``--dist loadgroup`` would send
# their users to one worker, but with pytest 9.2 and xdist 3.8 it silently groups nothing:
# pytest-dev/pytest-xdist#1386.) Each worker gets its share of the cores for torch (2 workers on
# 2 cores: one thread each), instead of every worker starting one thread per core.


def pytest_configure(config):
    # xdist's workers start with COLUMNS=80 and LINES=24 in their environment (a serial run has
    # neither here); with them the builds' MkDocs log is wrapped and coloured, and the build tests
    # read that log for exact messages. Every run's subprocesses see the environment of a pipe.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
