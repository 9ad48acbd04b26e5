"""Running snippets: one fresh process each, in parallel, killed as a process group on timeout.

Every snippet runs through :func:`run_process` (the one place a snippet's process is started and
waited for), as ``python spaces_build/runner.py ...`` in an empty temporary working directory, in a
session of its own (so a timeout or an aborted build kills its children too), with the environment
:data:`SNIPPET_ENV` and ``PYTHONPATH`` = the repository root. :func:`execute` runs a list of snippets
over a thread pool, longest first, the timing-dependent ones afterwards one at a time.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .cache import SCHEMA, CacheEntry
from .capture import UNSAFE_SVG, Capture, decode, excerpt
from .config import Options
from .discovery import Snippet
from .project import NOT_SOURCES
from .forkserver import ForkServer, ForkServerError
from .forkserver import available as forkserver_available

log = logging.getLogger("mkdocs.spaces.engine")

RUNNER = Path(__file__).resolve().parent / "runner.py"


@dataclasses.dataclass
class Record:
    """What this build knows about one snippet."""

    snippet: Snippet
    status: str  # ok, failed, timeout
    cached: bool
    entry: CacheEntry | None = None  # the cache entry (status ok)
    figures: list[bytes] = dataclasses.field(default_factory=list)  # SVGs of a fresh run, not stored yet
    started_ns: int = 0  # wall clock (ns) when a fresh run started
    error: dict | None = None  # type, message, line (status failed / timeout)
    output: str = ""  # output of a failed run, for its message
    seconds: float | None = None
    peak_memory_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe_failure(self) -> str:
        snip = self.snippet
        line = (self.error or {}).get("line")
        where = f"{snip.rel}:{line}" if line else snip.rel
        pages = ", ".join(snip.page_files) or "not included by any page"
        if self.status == "timeout":
            head = f"{where}: timed out (killed after {self.error['message']})"
        else:
            head = f"{where}: {self.error['type']}: {self.error['message']}"
        text = f"Snippet failed: {head}\n  article: {snip.article or '-'} ({pages})"
        tail = self.output.rstrip().splitlines()[-25:]
        if tail:
            text += "\n  output (last lines):\n" + "\n".join("    | " + line for line in tail)
        return text


# The environment every snippet runs in (part of the cache key: changing it re-runs everything).
SNIPPET_ENV = {
    "MPLBACKEND": "Agg",
    "PYTHONHASHSEED": "0",
    "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave in the order they were written
    "PYTHONDONTWRITEBYTECODE": "1",  # a snippet run writes nothing into the repository
    "PYTHONIOENCODING": "utf-8",
    # One thread per snippet: parallelism comes from --jobs, and results do not depend on it.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "KERAS_BACKEND": "torch",  # the archive's Keras code runs on Keras 3's PyTorch backend
}



def child_env(root: Path, device: str) -> dict[str, str]:
    """The environment of a snippet's process: the build's, :data:`SNIPPET_ENV`, the repository on
    ``PYTHONPATH`` and the device (``SPACES_DEVICE``, read by ``spaces_code.runtime``)."""
    env = dict(os.environ)
    env.update(SNIPPET_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["SPACES_DEVICE"] = device
    return env


@dataclasses.dataclass
class ProcessResult:
    """How a snippet's process ended, and what it printed (head and tail, see :class:`~spaces_build.capture.Capture`)."""

    returncode: int | None
    timed_out: bool
    head: bytes
    tail: bytes
    truncated: bool
    total_bytes: int
    wall: float


def run_process(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float,
                started: Callable[[Callable[[], None]], None] | None = None,
                server: ForkServer | None = None) -> ProcessResult:
    """Run ``argv`` in a new session (its own process group), stdout and stderr as one pipe, and wait
    at most ``timeout`` seconds; then the whole group is killed (the snippet's own children too).
    ``started(kill)`` is called once the process runs, with a function that kills its group.

    With ``server``, the process is forked from that pre-imported server (``--no-preload``: never)
    instead of starting a new interpreter: the same fresh process of its own, same group, pipe and
    timeout, without the seconds of importing torch and matplotlib again. Raises
    :class:`ForkServerError` when the server is gone (the caller falls back to a plain start)."""
    t0 = time.perf_counter()
    if server is not None:
        proc = server.popen(argv, cwd=cwd, env=env)
    else:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    if started is not None:
        started(lambda: _kill_group(proc))
    capture = Capture(proc.stdout)
    capture.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc)
        proc.wait()
    capture.join(timeout=10)
    proc.stdout.close()
    head, tail, truncated = capture.parts()
    return ProcessResult(proc.returncode, timed_out, head, tail, truncated, capture.total, time.perf_counter() - t0)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Executor:
    """Runs snippets in parallel processes; can kill every running one at once."""

    def __init__(self, root: Path, device: str, options: Options, sandbox: str):
        self.root = root
        self.device = device
        self.options = options
        self.sandbox = sandbox
        self.env = child_env(root, device)
        self.lock = threading.Lock()
        self.running: dict[int, Callable[[], None]] = {}
        self.ids = itertools.count()
        self.aborted = threading.Event()
        self.server: ForkServer | None = None  # execute() starts one unless options.preload is off

    def kill_all(self) -> None:
        self.aborted.set()
        with self.lock:
            kills = list(self.running.values())
        for kill in kills:
            kill()

    def run(self, snippet: Snippet) -> Record | None:
        """Execute one snippet; ``None`` when the build was aborted before or while it ran."""
        if self.aborted.is_set():
            return None
        tmp = Path(tempfile.mkdtemp(prefix="spaces-snippet-"))
        try:
            record = self._run(snippet, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if record is not None and not record.ok and not self.options.keep_going:
            self.kill_all()  # here, not in the caller: the next queued snippet must not start
        return record

    def _run(self, snippet: Snippet, tmp: Path) -> Record | None:
        cwd, out = tmp / "cwd", tmp / "out"
        cwd.mkdir()
        out.mkdir()
        argv = [sys.executable, str(RUNNER), "--root", str(self.root), "--snippet", str(snippet.path),
                "--out", str(out), "--ignore", ",".join(sorted(NOT_SOURCES)), "--sandbox", self.sandbox,
                "--build-pid", "{parent}"]
        started = datetime.now(timezone.utc)
        # File times come from a coarse clock that lags this one: an edit before now never looks later.
        started_ns = time.time_ns()
        token = next(self.ids)

        def register(kill: Callable[[], None]) -> None:
            with self.lock:
                self.running[token] = kill
            if self.aborted.is_set():
                kill()

        server = self.server
        try:
            try:
                # the runner exits at once unless its parent is this pid: the server, or this build
                proc = run_process(_with_parent(argv, server.pid if server else os.getpid()), cwd=cwd,
                                   env=self.env, timeout=self.options.timeout, started=register, server=server)
            except ForkServerError as exc:
                log.warning(f"The fork server stopped ({exc}); snippets now start plain interpreters")
                self.server = None
                proc = run_process(_with_parent(argv, os.getpid()), cwd=cwd, env=self.env,
                                   timeout=self.options.timeout, started=register)
        finally:
            with self.lock:
                self.running.pop(token, None)
        if self.aborted.is_set() and not proc.timed_out and not (out / "result.json").exists():
            return None  # killed because another snippet failed: not this one's fault

        replacements = [(str(cwd) + os.sep, ""), (str(cwd), "."), (str(self.root) + os.sep, ""),
                        (str(tmp), "<tmp>")]
        output, output_tail = decode(proc.head, replacements), decode(proc.tail, replacements)
        wall = round(proc.wall, 3)
        try:
            result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None

        if proc.timed_out:
            return Record(snippet, "timeout", False,
                          error={"type": "Timeout", "message": f"{self.options.timeout:g} s", "line": None},
                          output=output + output_tail, seconds=wall)
        if result is None:
            code = proc.returncode
            reason = f"killed by signal {-code}" if code and code < 0 else f"exit status {code}"
            return Record(snippet, "failed", False,
                          error={"type": "ProcessDied", "message": f"the snippet's process ended ({reason}) "
                                 "before reporting a result", "line": None},
                          output=output + output_tail, seconds=wall)
        if result["status"] != "ok":
            return Record(snippet, "failed", False, error=result["error"], output=output + output_tail,
                          seconds=result.get("seconds"), peak_memory_mb=result.get("peak_memory_mb"))

        deps = [["file", rel, ""] for rel in result["files"]] + [["dir", rel, ""] for rel in result["dirs"]]
        figures = [(out / name).read_bytes() for name in result.get("figures", [])]
        for i, data in enumerate(figures, start=1):
            unsafe = UNSAFE_SVG.search(data)
            if unsafe:  # matplotlib never writes these: the snippet wrote the file itself
                return Record(snippet, "failed", False, error={
                    "type": "UnsafeFigure", "line": None,
                    "message": f"figure {i} contains {excerpt(data, unsafe.start(), unsafe.end())!r}; "
                               "a figure with scripts, event handlers or external references is never published"},
                    output=output + output_tail, seconds=result["seconds"])
        entry = CacheEntry(
            snippet=snippet.rel,
            article=snippet.article,
            snippet_sha256=snippet.sha256,
            deps=deps,  # hashes filled in by the engine, from the files as they are after the run
            output=output,
            output_tail=output_tail,
            output_bytes=proc.total_bytes,
            truncated=proc.truncated,
            seconds=result["seconds"],
            peak_memory_mb=result["peak_memory_mb"],
            device=result["device"],
            device_name=result.get("device_name"),
            versions=result["versions"],
            executed_at=started.replace(microsecond=0).isoformat(),
            timing_dependent=snippet.timing_dependent,
            schema=SCHEMA,
        )
        return Record(snippet, "ok", False, entry=entry, figures=figures, started_ns=started_ns,
                      seconds=result["seconds"], peak_memory_mb=result["peak_memory_mb"])


def _with_parent(argv: list[str], pid: int) -> list[str]:
    return [str(pid) if arg == "{parent}" else arg for arg in argv]


def start_server(env: dict[str, str]) -> ForkServer | None:
    """A fork server that pre-imports torch (with ``torch._dynamo``, which its optimizers import),
    NumPy and matplotlib (in the background: the first snippet waits for it), or ``None`` where the
    platform has none. See ``spaces_build.forkserver.PRELOAD``."""
    if not forkserver_available():
        return None
    log.info("Snippets: forked from a server that pre-imports torch (with torch._dynamo), NumPy and matplotlib "
             "(--no-preload: each starts a new interpreter)")
    return ForkServer(env).start()


# A server started by engine.prestart() before MkDocs loaded (its key: the environment it was started
# with), waiting for execute() to take it.
_PRESTARTED: list[tuple[str, ForkServer]] = []
_PRESTART_LOCK = threading.Lock()


# Besides forkserver.FIXED_AT_START, what the preloaded libraries may read from the environment when
# imported. A child gets the build's whole environment anyway; these must match the server's. (Other
# variables may change meanwhile: Material sets NO_MKDOCS_2_WARNING while MkDocs loads.)
_IMPORT_TIME_PREFIXES = ("PYTHON", "TORCH", "PYTORCH", "MPL", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "NUMPY",
                         "CUDA", "CUBLAS", "NVIDIA_", "LD_", "SPACES_", "KERAS_")


def _env_key(env: dict[str, str]) -> str:
    from .forkserver import FIXED_AT_START

    return json.dumps(sorted((k, v) for k, v in env.items()
                             if k in FIXED_AT_START or k.startswith(_IMPORT_TIME_PREFIXES)))


def prestart_server(env: dict[str, str]) -> bool:
    """Start a fork server with ``env`` now (its preload runs in the background); :func:`execute`
    takes it when its snippets' environment is the same, else it is stopped."""
    if not forkserver_available():
        return False
    discard_prestarted()
    server = ForkServer(env).start()
    with _PRESTART_LOCK:
        _PRESTARTED.append((_env_key(env), server))
    return True


def discard_prestarted() -> None:
    """Stop a prestarted server nobody took (the build found nothing to run, or failed first)."""
    with _PRESTART_LOCK:
        servers = [server for _, server in _PRESTARTED]
        _PRESTARTED.clear()
    for server in servers:
        server.close()


def _take_prestarted(env: dict[str, str]) -> ForkServer | None:
    with _PRESTART_LOCK:
        found = _PRESTARTED.pop() if _PRESTARTED else None
    if found is None:
        return None
    key, server = found
    if key != _env_key(env):
        server.close()
        return None
    log.info("Snippets: forked from a server that pre-imports torch (with torch._dynamo), NumPy and matplotlib "
             "(started before MkDocs loaded; --no-preload: each starts a new interpreter)")
    return server


class _Progress:
    """A rich progress bar on a terminal; one log line per finished snippet otherwise."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                       TextColumn, TimeElapsedColumn)

            self.bar = Progress(SpinnerColumn(), TextColumn("[bold]snippets"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), console=Console(stderr=True),
                                transient=False)
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def advance(self, record: Record) -> None:
        self.done += 1
        mark = {"ok": "ok", "failed": "FAILED", "timeout": "TIMEOUT"}[record.status]
        line = f"{record.snippet.rel} {mark} ({record.seconds or 0:.1f} s)"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=line)
        else:
            log.info(f"[{self.done}/{self.total}] {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def execute(root: Path, snippets: list[Snippet], device: str, options: Options, sandbox: str,
            expected_seconds: dict[str, float], finished=None) -> list[Record]:
    """Run ``snippets`` over ``options.jobs`` workers, longest expected first (short makespan).

    Timing-dependent snippets run afterwards, one at a time on an otherwise idle build, so that what
    they measure is not the other snippets competing for the cores. Without ``keep_going`` the first
    failure stops the build: nothing new starts and running snippets are killed; records of
    aborted snippets are left out.
    """
    def longest_first(group):
        return sorted(group, key=lambda s: -expected_seconds.get(s.rel, float("inf")))

    phases = [(longest_first([s for s in snippets if not s.timing_dependent]), options.workers),
              (longest_first([s for s in snippets if s.timing_dependent]), 1)]
    executor = Executor(root, device, options, sandbox)
    if options.preload:
        executor.server = _take_prestarted(executor.env) or start_server(executor.env)
    else:
        discard_prestarted()
    progress = _Progress(len(snippets))
    records: list[Record] = []
    try:
        for group, jobs in phases:
            if not group or executor.aborted.is_set():
                continue
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs),
                                                       thread_name_prefix="snippet") as pool:
                futures = [pool.submit(executor.run, s) for s in group]
                try:
                    for future in concurrent.futures.as_completed(futures):
                        record = future.result()
                        if record is None:
                            continue
                        records.append(record)
                        progress.advance(record)
                        if finished is not None:
                            finished(record)
                        if not record.ok and not options.keep_going:
                            for f in futures:
                                f.cancel()
                except BaseException:
                    executor.kill_all()
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        progress.close()
        if executor.server is not None:
            executor.server.close()
    return records
