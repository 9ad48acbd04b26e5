"""The execution engine: find the snippets, run the stale ones, cache what they printed and drew.

Used by the MkDocs hook ``scripts/hooks/snippets.py`` (so that ``mkdocs build`` / ``mkdocs serve``
never publish stale output) and, through it, by ``scripts/build.py``. Nothing here imports torch,
NumPy or matplotlib: the parent process only hashes files, so a warm build costs next to nothing.

Cache (``.cache/snippets/<slug>/<name>.json``, one JSON file per snippet, written atomically):
the key is the SHA-256 of

- the snippet's source,
- every repository file the snippet imported (transitively, e.g. ``spaces_code/*.py``) or opened for
  reading, and the listing of every repository directory it listed, as recorded at run time,
- the Python / torch / NumPy versions, the device and the runner's own source.

A warm build recomputes the key from the recorded dependencies and compares: a change in
``spaces_code/foo.py`` re-runs exactly the snippets that imported it. Figures are stored
content-addressed in ``.cache/snippet-figures/<sha256>.svg`` before the entry that names them, so a
build killed at any moment leaves either the old entry or the new one, never half of one.
Failures are never cached. Rendering (output HTML, notebooks, code pages, the executions table)
is in ``scripts/engine_render.py``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("mkdocs.spaces.engine")

SCHEMA = 1
DEFAULT_TIMEOUT = 300.0
OUTPUT_HEAD = 48 * 1024  # bytes of output kept from the start ...
OUTPUT_TAIL = 16 * 1024  # ... and from the end, when a snippet prints more than both together
TIMING_MARK = re.compile(r"^\s*#\s*spaces:\s*timing-dependent\b", re.IGNORECASE)
TIMING_SCAN_LINES = 10
RUNNER = Path(__file__).resolve().parent / "run_snippet.py"

# A fenced block whose body is exactly one pymdownx.snippets include of a whole snippets/**/*.py file.
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
INCLUDE_LINE = re.compile(r"""^[ \t]*-+8<-+[ \t]+(["'])(?P<path>snippets/[^"':\n]+?\.py)\1[ \t]*$""")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


class EngineError(Exception):
    """One or more snippets failed or timed out; the message names each one."""


# --------------------------------------------------------------------------------------------------
# Options


@dataclasses.dataclass
class Options:
    """How to execute; ``scripts/build.py`` passes its flags to the hook as ``SPACES_*`` variables."""

    jobs: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    device: str = "auto"  # cpu, cuda or auto (cuda when torch sees one)
    timeout: float = DEFAULT_TIMEOUT  # seconds per snippet; the process group is killed after it
    keep_going: bool = False  # run every snippet and report all failures, instead of stopping early
    serve: bool = False  # mkdocs serve: show a failure on its page instead of failing the build

    @classmethod
    def from_env(cls, environ=os.environ) -> "Options":
        opts = cls()
        if environ.get("SPACES_JOBS"):
            opts.jobs = max(1, int(environ["SPACES_JOBS"]))
        if environ.get("SPACES_DEVICE"):
            opts.device = environ["SPACES_DEVICE"].lower()
        if environ.get("SPACES_TIMEOUT"):
            opts.timeout = float(environ["SPACES_TIMEOUT"])
        opts.keep_going = environ.get("SPACES_KEEP_GOING", "") not in ("", "0", "false")
        opts.serve = environ.get("SPACES_SERVE", "") not in ("", "0", "false")
        if opts.device not in ("auto", "cpu", "cuda"):
            raise EngineError(f"SPACES_DEVICE={opts.device!r}: use cpu, cuda or auto")
        return opts


# --------------------------------------------------------------------------------------------------
# Discovery


@dataclasses.dataclass
class Include:
    """A fenced block of a page whose body includes one snippet; ``close`` is its closing line index."""

    snippet: str  # "snippets/<slug>/<name>.py"
    open: int  # 0-based index of the opening fence line
    close: int  # 0-based index of the closing fence line
    indent: str


def find_includes(markdown: str) -> list[Include]:
    """Every fenced block whose body is exactly one ``--8<-- "snippets/....py"`` line."""
    lines = markdown.split("\n")
    found = []
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            j += 1
        if j >= len(lines):  # unclosed: runs to the end of the document
            break
        body = [line for line in lines[i + 1:j] if line.strip()]
        if len(body) == 1:
            inc = INCLUDE_LINE.match(body[0])
            if inc:
                found.append(Include(inc.group("path"), i, j, m.group("indent")))
        i = j + 1
    return found


def front_matter(markdown: str) -> dict:
    m = FRONT_MATTER.match(markdown)
    if not m:
        return {}
    import yaml

    try:
        data = yaml.load(m.group("yaml"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}  # the site's validation reports malformed front matter, not the engine
    return data if isinstance(data, dict) else {}


def is_timing_dependent(source: str) -> bool:
    return any(TIMING_MARK.match(line) for line in source.splitlines()[:TIMING_SCAN_LINES])


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
    """Snippets (every ``snippets/**/*.py`` not starting with ``_``, plus every included one) and the
    pages that include them. ``pages`` maps a docs-relative ``.md`` path to its file."""
    posts: dict[str, Post] = {}
    wanted: dict[str, list[str]] = {}
    for src_uri, path in sorted(pages.items()):
        text = path.read_text(encoding="utf-8")
        includes = find_includes(text) if "8<" in text else []
        meta = front_matter(text) if text.startswith("---") else {}
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
        data = path.read_bytes()
        source = data.decode("utf-8", errors="replace")
        including = list(dict.fromkeys(wanted.get(rel, [])))
        snippets[rel] = Snippet(rel, path, source, hashlib.sha256(data).hexdigest(),
                                is_timing_dependent(source), including,
                                [_relative(pages[p], root) for p in including])
    return snippets, posts


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# Environment and cache


_ENV_MEMO: dict[tuple, dict] = {}


def resolve_device(requested: str, root: Path) -> str:
    """``auto`` becomes ``cuda`` when torch sees a GPU, else ``cpu``, without importing torch here.

    No NVIDIA device node means CPU at once; otherwise a child process asks torch once, and the
    answer is kept in ``.cache/device-probe.json`` (keyed by torch version, driver and
    ``CUDA_VISIBLE_DEVICES``).
    """
    if requested == "cpu":
        return "cpu"
    nodes = [p for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version") if os.path.exists(p)]
    if not nodes and requested == "auto":
        return "cpu"
    try:
        driver = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        driver = ""
    probe_key = hashlib.sha256(json.dumps(
        [sys.executable, _version_of("torch"), driver, os.environ.get("CUDA_VISIBLE_DEVICES")]).encode()).hexdigest()
    probe_file = root / ".cache" / "device-probe.json"
    available = None
    try:
        data = json.loads(probe_file.read_text())
        if data.get("key") == probe_key:
            available = bool(data["cuda"])
    except (OSError, ValueError, KeyError):
        pass
    if available is None:
        proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                              capture_output=True, text=True, timeout=300)
        available = proc.stdout.strip() == "True"
        atomic_write(probe_file, json.dumps({"key": probe_key, "cuda": available}).encode())
    if requested == "cuda" and not available:
        raise EngineError("--device cuda was requested but torch.cuda.is_available() is False here")
    return "cuda" if available else "cpu"


def _version_of(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str) -> dict:
    """What besides the sources decides a snippet's output: part of every cache key."""
    memo_key = (sys.executable, device, RUNNER.stat().st_mtime_ns)
    if memo_key not in _ENV_MEMO:
        _ENV_MEMO[memo_key] = {
            "schema": SCHEMA,
            "python": platform.python_version(),
            "torch": _version_of("torch"),
            "numpy": _version_of("numpy"),
            "device": device,
            "runner": hashlib.sha256(RUNNER.read_bytes()).hexdigest()[:16],
            "snippet_env": SNIPPET_ENV,
        }
    return _ENV_MEMO[memo_key]


class Hasher:
    """SHA-256 of repository files and directory listings, each computed once per build."""

    def __init__(self, root: Path):
        self.root = root
        self.memo: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, rel: str) -> str:
        key = (kind, rel)
        if key not in self.memo:
            path = self.root / rel
            try:
                if kind == "file":
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    digest = hashlib.sha256("\n".join(sorted(os.listdir(path))).encode()).hexdigest()
            except OSError:
                digest = "missing"
            self.memo[key] = digest
        return self.memo[key]


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


def cache_key(snippet_sha: str, deps: list[list[str]], env: dict) -> str:
    blob = json.dumps({"snippet": snippet_sha, "deps": sorted(deps), "env": env}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename over ``path``: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


class Cache:
    def __init__(self, root: Path):
        self.root = root
        self.entries = root / ".cache" / "snippets"
        self.figures = root / ".cache" / "snippet-figures"

    def entry_path(self, rel: str) -> Path:
        return self.entries / (rel.split("/", 1)[1][:-3] + ".json")

    def load(self, rel: str) -> dict | None:
        try:
            entry = json.loads(self.entry_path(rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or unreadable: the snippet simply runs again
        return entry if isinstance(entry, dict) and entry.get("schema") == SCHEMA else None

    def figure_path(self, sha: str) -> Path:
        return self.figures / f"{sha}.svg"

    def store_figure(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.figure_path(sha)
        if not path.exists():
            atomic_write(path, data)
        return sha

    def store(self, entry: dict, figures: list[bytes]) -> dict:
        """Figures first (content-addressed), then the entry that names them."""
        entry = dict(entry, figures=[self.store_figure(data) for data in figures])
        atomic_write(self.entry_path(entry["snippet"]),
                     json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
        return entry

    def is_fresh(self, entry: dict | None, snippet: Snippet, env: dict, hasher: Hasher) -> bool:
        if not entry:
            return False
        deps = [[kind, rel, hasher(kind, rel)] for kind, rel, _ in entry.get("deps", [])]
        if entry.get("key") != cache_key(snippet.sha256, deps, env):
            return False
        return all(self.figure_path(sha).is_file() for sha in entry.get("figures", []))

    def prune(self, keep_snippets: set[str]) -> None:
        """Drop entries of snippets that no longer exist and figures no entry names."""
        self.prune_temporary()
        if not self.entries.is_dir():
            return
        referenced = set()
        for path in self.entries.rglob("*.json"):
            rel = "snippets/" + path.relative_to(self.entries).as_posix()[:-5] + ".py"
            if rel not in keep_snippets:
                path.unlink(missing_ok=True)
                continue
            try:
                referenced.update(json.loads(path.read_text(encoding="utf-8")).get("figures", []))
            except (OSError, ValueError):
                pass
        if self.figures.is_dir():
            for path in self.figures.glob("*.svg"):
                if path.stem not in referenced and time.time() - path.stat().st_mtime > 3600:
                    path.unlink(missing_ok=True)  # an hour's grace for a build running beside us

    def prune_temporary(self, older_than: float = 600.0) -> None:
        """Remove the temporary siblings (``.<name>.*.tmp``) of writes cut short by a killed build.

        They are never read as entries (only ``<name>.json`` is); ``atomic_write`` renames its own
        within milliseconds, so ten minutes old means abandoned, never a write in progress."""
        now = time.time()
        for folder in (self.entries, self.figures, self.root / ".cache" / "notebooks"):
            if folder.is_dir():
                for path in folder.rglob(".*.tmp"):
                    try:
                        if now - path.stat().st_mtime > older_than:
                            path.unlink()
                    except OSError:
                        pass


# --------------------------------------------------------------------------------------------------
# Execution


@dataclasses.dataclass
class Record:
    """What this build knows about one snippet."""

    snippet: Snippet
    status: str  # ok, failed, timeout
    cached: bool
    entry: dict | None = None  # the cache entry (status ok)
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


class _Capture(threading.Thread):
    """Reads a child's combined stdout/stderr, keeping its head and tail and counting the rest."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.total = 0

    def run(self):
        while True:
            chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            room = OUTPUT_HEAD - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_len += len(chunk)
                while self.tail_len - len(self.tail[0]) >= OUTPUT_TAIL:
                    self.tail_len -= len(self.tail.popleft())

    def parts(self) -> tuple[bytes, bytes, bool]:
        """(head, tail, truncated); without truncation everything is in head."""
        tail = b"".join(self.tail)
        if len(self.head) + len(tail) == self.total and len(tail) <= OUTPUT_TAIL:
            return bytes(self.head) + tail, b"", False
        return bytes(self.head), tail[-OUTPUT_TAIL:], True


# What a figure (an SVG served from the site, and inlined into the notebook pages) may not contain.
# (Attributes are matched inside tags only: matplotlib copies the plot's texts into <!-- comments -->.)
UNSAFE_SVG = re.compile(rb"<\s*(?:script|foreignObject|iframe|embed|object)\b|<[a-z][^>]*\son[a-z]+\s*="
                        rb"|<[a-z][^>]*(?<![a-z])href\s*=\s*[\"']\s*(?!#|data:image/(?:png|jpeg|gif);)"
                        rb"|url\(\s*[\"']?\s*(?:[a-z]+:|//)",
                        re.IGNORECASE)


def _excerpt(data: bytes, start: int, end: int) -> str:
    """The offending part of a figure, on one line: the match and what follows it."""
    text = data[start:min(end, start + 60) + 40].decode("utf-8", errors="replace")
    return " ".join(text.split())


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _decode(data: bytes, replacements: list[tuple[str, str]]) -> str:
    """Output as a terminal would show it: colours dropped, a line redrawn after ``\\r`` (progress
    bars) keeps its last state, and the machine's paths become repository-relative."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if "\x1b" in text:
        text = ANSI_ESCAPE.sub("", text)
    if "\r" in text:
        text = "\n".join(_last_redraw(line) for line in text.split("\n"))
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def _last_redraw(line: str) -> str:
    parts = [part for part in line.split("\r") if part]
    return parts[-1] if parts else ""


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


_LANDLOCK_ABI: int | None = None


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers to unprivileged processes, 0 when none (not Linux,
    kernel older than 5.13, or a seccomp profile that forbids it)."""
    global _LANDLOCK_ABI
    if _LANDLOCK_ABI is None:
        _LANDLOCK_ABI = 0
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                _LANDLOCK_ABI = max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
            except (OSError, AttributeError):
                _LANDLOCK_ABI = 0
    return _LANDLOCK_ABI


def sandbox_mode() -> str:
    """How snippets are kept from writing into the repository, besides the runner's audit hook:

    - ``landlock``: the kernel makes the repository read-only for the snippet and every process it
      starts (the runner applies it or refuses to run);
    - ``off``: no kernel support (or ``SPACES_SANDBOX=off``): the build compares the repository
      before and after each snippet instead (:class:`RepoWatch`) and fails naming the snippet.
    """
    if os.environ.get("SPACES_SANDBOX", "").lower() in ("off", "0", "false", "no"):
        return "off"
    return "landlock" if landlock_abi() > 0 else "off"


def child_env(root: Path, device: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SNIPPET_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["SPACES_DEVICE"] = device
    env["SPACES_BUILD_PID"] = str(os.getpid())  # the runner exits if it was orphaned while starting
    env["SPACES_SANDBOX"] = sandbox_mode()  # "landlock": the repository is read-only for the snippet
    for name in ("SPACES_JOBS", "SPACES_TIMEOUT", "SPACES_KEEP_GOING", "SPACES_SERVE"):
        env.pop(name, None)
    return env


class Executor:
    """Runs snippets in parallel subprocesses; can kill every running one at once."""

    def __init__(self, root: Path, device: str, options: Options):
        self.root = root
        self.device = device
        self.options = options
        self.env = child_env(root, device)
        self.lock = threading.Lock()
        self.running: dict[int, subprocess.Popen] = {}
        self.aborted = threading.Event()

    def kill_all(self) -> None:
        self.aborted.set()
        with self.lock:
            procs = list(self.running.values())
        for proc in procs:
            _kill_group(proc)

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
        cmd = [sys.executable, str(RUNNER), "--root", str(self.root), "--snippet", str(snippet.path),
               "--out", str(out)]
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        # File times come from a coarse clock that lags this one: an edit before now never looks later.
        started_ns = time.time_ns()
        proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        with self.lock:
            self.running[proc.pid] = proc
        capture = _Capture(proc.stdout)
        capture.start()
        timed_out = False
        try:
            proc.wait(timeout=self.options.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # the snippet's own children too
            proc.wait()
            with self.lock:
                self.running.pop(proc.pid, None)
        capture.join(timeout=10)
        proc.stdout.close()
        wall = time.perf_counter() - t0
        if self.aborted.is_set() and not timed_out and not (out / "result.json").exists():
            return None  # killed because another snippet failed: not this one's fault

        replacements = [(str(cwd) + os.sep, ""), (str(cwd), "."), (str(self.root) + os.sep, ""),
                        (str(tmp), "<tmp>")]
        head, tail, truncated = capture.parts()
        output, output_tail = _decode(head, replacements), _decode(tail, replacements)
        try:
            result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None

        if timed_out:
            return Record(snippet, "timeout", False,
                          error={"type": "Timeout", "message": f"{self.options.timeout:g} s", "line": None},
                          output=output + output_tail, seconds=round(wall, 3))
        if result is None:
            code = proc.returncode
            reason = f"killed by signal {-code}" if code and code < 0 else f"exit status {code}"
            return Record(snippet, "failed", False,
                          error={"type": "ProcessDied", "message": f"the snippet's process ended ({reason}) "
                                 "before reporting a result", "line": None},
                          output=output + output_tail, seconds=round(wall, 3))
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
                    "message": f"figure {i} contains {_excerpt(data, unsafe.start(), unsafe.end())!r}; "
                               "a figure with scripts, event handlers or external references is never published"},
                    output=output + output_tail, seconds=result["seconds"])
        return Record(snippet, "ok", False, entry={
            "schema": SCHEMA,
            "snippet": snippet.rel,
            "article": snippet.article,
            "snippet_sha256": snippet.sha256,
            "deps": deps,  # hashes filled in by the caller, from the files as they are now
            "output": output,
            "output_tail": output_tail,
            "output_bytes": capture.total,
            "truncated": truncated,
            "seconds": result["seconds"],
            "peak_memory_mb": result["peak_memory_mb"],
            "device": result["device"],
            "device_name": result.get("device_name"),
            "versions": result["versions"],
            "executed_at": started.replace(microsecond=0).isoformat(),
            "timing_dependent": snippet.timing_dependent,
            "_figures": figures,
            "_started": started_ns,
        }, seconds=result["seconds"], peak_memory_mb=result["peak_memory_mb"])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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


def execute(root: Path, snippets: list[Snippet], device: str, options: Options,
            expected_seconds: dict[str, float], finished=None) -> list[Record]:
    """Run ``snippets`` over ``options.jobs`` workers, longest expected first (short makespan).

    Timing-dependent snippets run afterwards, one at a time on an otherwise idle build, so that what
    they measure is not the other snippets competing for the cores. Without ``keep_going`` the first
    failure stops the build: nothing new starts and running snippets are killed; records of
    aborted snippets are left out.
    """
    def longest_first(group):
        return sorted(group, key=lambda s: -expected_seconds.get(s.rel, float("inf")))

    phases = [(longest_first([s for s in snippets if not s.timing_dependent]), options.jobs),
              (longest_first([s for s in snippets if s.timing_dependent]), 1)]
    executor = Executor(root, device, options)
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
    return records


# --------------------------------------------------------------------------------------------------
# The repository must come out of the snippets' runs as it went in

# Not the repository's content: environments, caches (the engine writes .cache/ itself), the site.
SNAPSHOT_SKIP = frozenset({".venv", "venv", ".cache", "site", "__pycache__", "node_modules", ".pytest_cache",
                           ".mypy_cache", ".ruff_cache", ".tox", ".git"})
# Of .git, only what could run code later (hooks) or redirect it (config): the rest changes with commits.
SNAPSHOT_GIT = (".git/hooks", ".git/config")


def repo_snapshot(root: Path) -> dict[str, tuple]:
    """``(size, mtime_ns, ctime_ns, inode)`` of every file of the repository and ``None`` for each folder
    (the ctime cannot be set back by the writer). ~1 ms per hundred files: cheap enough per snippet."""
    snap: dict[str, tuple | None] = {}
    prefix = len(str(root)) + 1

    def add(top: str) -> None:
        if os.path.isfile(top):
            try:
                st = os.lstat(top)
            except OSError:
                return
            snap[top[prefix:]] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in SNAPSHOT_SKIP]
            for name in dirnames:
                snap[os.path.join(dirpath, name)[prefix:] + "/"] = None
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                snap[path[prefix:]] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    add(str(root))
    for rel in SNAPSHOT_GIT:
        add(str(root / rel))
    return snap


class RepoWatch:
    """Files of the repository that changed while snippets ran, and the snippets running then.

    A snippet runs in a temporary working directory and its runner refuses Python-level writes into
    the repository (``scripts/run_snippet.py``). Where the kernel offers Landlock, the repository is
    read-only for the snippet's whole process tree and this watch is off (:func:`sandbox_mode`); else
    it is the check that also covers child processes and C libraries, and, since it cannot tell a
    snippet's write from a person's edit made during the build, its message says both. The
    repository is compared with its snapshot each time a snippet finishes; a
    change is blamed on every snippet whose run overlapped the interval in which it appeared (with
    ``--jobs 1``, exactly the one that did it). Blamed snippets are not cached, and the build fails.
    """

    SLACK = 0.5  # seconds of process start-up before a runner starts its own clock
    # A snapshot costs ~1 ms per hundred files, so one per finished snippet would make a build quadratic
    # (1,000 snippets of a 3,000-file archive: 30 s). After a snippet, the repository is compared only
    # if SPACING times the last snapshot's cost has passed since the previous comparison (at most ~10%
    # of a core); the archive's snippets take seconds, so each is still compared on its own.
    # check(None), after the last snippet, always compares.
    SPACING = 10

    def __init__(self, root: Path):
        self.root = root
        started = time.perf_counter()
        self.last = repo_snapshot(root)
        self.cost = time.perf_counter() - started  # seconds of the last snapshot
        self.last_time = time.time()
        self.changes: list[tuple[float, float, list[str]]] = []  # (after, until, "path (what)")
        self.windows: dict[str, tuple[float, float]] = {}  # snippet rel -> (start, end) of its run

    @classmethod
    def disabled(cls, root: Path) -> "RepoWatch":
        watch = cls.__new__(cls)
        watch.root, watch.changes, watch.windows, watch.active = root, [], {}, False
        return watch

    active = True

    def check(self, record: Record | None) -> None:
        if not self.active:
            return
        now = time.time()
        if record is not None:
            self.windows[record.snippet.rel] = (now - (record.seconds or 0.0) - self.SLACK, now)
            if now - self.last_time < self.SPACING * self.cost:
                return  # compared at a later finish (or at the end): blame covers the longer interval
        started = time.perf_counter()
        snap = repo_snapshot(self.root)
        self.cost = time.perf_counter() - started
        if snap != self.last:
            diff = []
            for path in sorted(self.last.keys() | snap.keys()):
                old, new = self.last.get(path, False), snap.get(path, False)
                if old != new:
                    what = "created" if old is False else "deleted" if new is False else "modified"
                    diff.append(f"{path} ({what})")
            self.changes.append((self.last_time, now, diff))
        self.last, self.last_time = snap, now

    def suspects(self, rel: str) -> bool:
        start, end = self.windows.get(rel, (0.0, 0.0))
        return any(start <= until and end > after for after, until, _ in self.changes)

    def all_suspects(self) -> list[str]:
        return sorted(rel for rel in self.windows if self.suspects(rel))

    def report(self) -> str:
        if not self.changes:
            return ""
        lines = ["The repository changed while snippets ran. A snippet must not write into the repository "
                 "(it runs in a temporary working directory: write there):"]
        for after, until, diff in self.changes:
            who = sorted(rel for rel, (start, end) in self.windows.items() if start <= until and end > after)
            blame = ", ".join(who) if who else "a snippet of this build (" + ", ".join(sorted(self.windows)) + ")"
            lines += [f"  {path}" for path in diff]
            lines.append(f"    changed while running: {blame}")
        lines.append("Restore those files (git status shows them), fix the snippet and build again; if you "
                     "edited them yourself during the build, just build again.")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# One build


@dataclasses.dataclass
class BuildState:
    records: dict[str, Record]  # by snippet rel
    posts: dict[str, Post]  # by docs-relative src_uri
    device: str
    executed: int

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

    Raises :class:`EngineError` naming every failed snippet, unless ``options.serve``.
    """
    t0 = time.perf_counter()
    snippets, posts = discover(root, pages)
    device = resolve_device(options.device, root)
    env = environment(device)
    cache = Cache(root)
    hasher = Hasher(root)
    records: dict[str, Record] = {}
    stale: list[Snippet] = []
    expected: dict[str, float] = {}
    for rel, snippet in snippets.items():
        entry = cache.load(rel)
        if cache.is_fresh(entry, snippet, env, hasher):
            records[rel] = Record(snippet, "ok", True, entry=entry, seconds=entry["seconds"],
                                  peak_memory_mb=entry["peak_memory_mb"])
        else:
            stale.append(snippet)
            if entry:
                expected[rel] = entry.get("seconds", 0.0)
    log.info(f"Snippets: {len(snippets)} found, {len(snippets) - len(stale)} cached, "
             f"{len(stale)} to run on {device} with {options.jobs} jobs "
             f"(cache check {time.perf_counter() - t0:.2f} s)")
    failures = []
    if stale:
        # Where the kernel keeps the repository read-only for the snippets, a change during the build
        # is someone's edit, not a snippet's: compare only where it does not.
        watch = RepoWatch(root) if sandbox_mode() == "off" else RepoWatch.disabled(root)

        def finished(record: Record) -> None:
            """Cache each success as soon as it arrives: a build killed later keeps it."""
            watch.check(record)
            if record.ok:
                entry = record.entry
                figures = entry.pop("_figures")
                started = entry.pop("_started")
                # Hash the dependencies as they are now (after the run, like make's depfiles) ...
                fresh = Hasher(root)
                entry["deps"] = sorted([kind, rel, fresh(kind, rel)] for kind, rel, _ in entry["deps"])
                entry["env"] = env
                entry["key"] = cache_key(record.snippet.sha256, entry["deps"], env)
                # ... unless one was edited while the snippet ran: then the output may predate it.
                if watch.suspects(record.snippet.rel):
                    log.info(f"{record.snippet.rel}: the repository changed while it ran; not cached")
                    entry["figures"] = [cache.store_figure(data) for data in figures]
                    record.entry = entry
                elif _changed_since(root, entry["deps"], started) or record.snippet.sha256 != _sha_now(record.snippet):
                    log.info(f"{record.snippet.rel}: a source changed while it ran; not cached")
                    entry["figures"] = [cache.store_figure(data) for data in figures]
                    record.entry = entry
                else:
                    record.entry = cache.store(entry, figures)
            else:
                failures.append(record)
            records[record.snippet.rel] = record

        t_run = time.perf_counter()
        execute(root, stale, device, options, expected, finished)
        watch.check(None)
        ran = len(stale)
        done = sum(1 for s in stale if s.rel in records)
        # benchmarks/run.py reads this line: the execution phase alone, for --jobs comparisons
        log.info(f"Snippets: executed {done} in {time.perf_counter() - t_run:.2f} s with {options.jobs} jobs")
        if done < ran:
            log.info(f"Stopped after the first failure: {ran - done} snippets were not run "
                     "(use --keep-going to run them all)")
        repo_message = watch.report()
        for rel in watch.all_suspects():  # never served from the cache: the next build runs them again
            cache.entry_path(rel).unlink(missing_ok=True)
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
    return BuildState(records, posts, device, executed)
