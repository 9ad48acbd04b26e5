"""Run ONE snippet in this fresh process and write what it did to ``<out>/result.json``.

Started by ``spaces_build.executor`` as a script (``python .../spaces_build/runner.py``; the build
imports only :func:`landlock_abi` from it), one process per snippet, in its own session and in an
empty temporary working directory, with ``PYTHONPATH`` = repository root. It imports nothing but the
standard library, so that nothing of the build becomes a dependency of a snippet. Besides running
the snippet like ``python snippets/<slug>/<name>.py`` it

- seeds ``random`` now and NumPy / torch right after they are first imported (snippets seed again
  through ``spaces_code.runtime.make_generator``; this is the safety net),
- records every repository file the snippet imported (``sys.modules``, transitively) or opened for
  reading, and every repository directory it listed (an audit hook): the cache key of the snippet,
- saves every open matplotlib figure as a deterministic SVG (fixed ``svg.hashsalt``, no date),
- measures the peak resident memory of the process and of the children it waited for,
- refuses writes into the repository (:class:`_WriteGuard`): the working directory is a temporary
  folder, so ``open("x.txt", "w")`` lands there; an absolute path into the repository raises
  ``PermissionError``; where the kernel offers Landlock, the repository is also read-only for every
  process the snippet starts (:func:`_sandbox_repository`).

stdout and stderr are one pipe read by the parent, so the text output keeps its order.
"""
from __future__ import annotations

import argparse
import errno
import importlib.abc
import json
import os
import random
import resource
import runpy
import sys
import time
import traceback

SEED = 0
FIGURE_LIMIT = 20  # more open figures than this is a bug in the snippet, not a demonstration
# Directories of the repository whose files are never dependencies of a snippet: the build passes
# spaces_build.project.NOT_SOURCES as --ignore.
IGNORED_PARTS: set[str] = set()


def _set_parent_death_signal(build_pid: int | None) -> None:
    """Die with the build, and take the snippet's own children along: if the build is killed (even
    ``kill -9``), the whole process group of this runner (its session, which the engine created)
    is killed, so that no child process of a snippet (a ``subprocess``, a ``multiprocessing``
    worker) lives on, hanging or not.

    Three guards: the kernel's parent-death signal (SIGTERM, handled below by killing the group);
    a watchdog thread that notices the change of parent even while the main thread is busy in C
    code; and, for a build killed while this process was starting (before ``prctl``), the build's
    pid (``--build-pid``), compared at once.
    """
    import signal
    import threading

    parent = build_pid or os.getppid()

    def kill_group(*_) -> None:
        if os.getpgrp() == os.getpid():  # our own group (start_new_session), never the caller's
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)

    if os.getppid() != parent:
        kill_group()
    try:
        import ctypes

        signal.signal(signal.SIGTERM, kill_group)
        # Not in forked children (multiprocessing workers): their SIGTERM (Pool.terminate) keeps its
        # default action. A Python-level handler there may never run (a worker blocked on a lock
        # did not), and the pool then waits forever for the worker to exit.
        os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # not Linux: the watchdog and the parent's process-group kill remain
        pass
    if os.getppid() != parent:
        kill_group()

    def watchdog() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        kill_group()

    threading.Thread(target=watchdog, name="spaces-watchdog", daemon=True).start()


class _SeedAfterImport(importlib.abc.MetaPathFinder):
    """Seed NumPy and torch the moment they finish importing (no cost for snippets that never do)."""

    NAMES = ("numpy", "torch")

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.NAMES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        inner = spec.loader

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                # The real loader comes back at once, so nothing later sees this wrapper.
                module.__loader__ = inner
                module.__spec__.loader = inner
                inner.exec_module(module)
                _seed(fullname, module)

        spec.loader = _Loader()
        return spec


def _seed(name: str, module) -> None:
    if name == "numpy":
        module.random.seed(SEED)
    elif name == "torch":
        module.manual_seed(SEED)


class _Recorder:
    """Audit hook: repository files opened for reading and directories listed while the snippet runs."""

    EVENTS = frozenset({"open", "os.listdir", "os.scandir"})

    def __init__(self, root: str, exclude: set[str], runner: str):
        self.root = root.rstrip(os.sep) + os.sep
        self.exclude = exclude  # files that are never dependencies (the snippet itself, this runner)
        self.runner = runner  # its frame is on every stack: it does not make a call "the project's"
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.active = False

    def __call__(self, event, args):
        if not self.active or event not in self.EVENTS:
            return
        try:
            if not self._called_by_project():
                return
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            path = os.fsdecode(path)
            if event == "open":
                mode, flags = args[1], args[2]
                if mode is not None and any(c in mode for c in "wax+"):
                    return
                if mode is None and flags & (os.O_WRONLY | os.O_RDWR):
                    return
                self._add(self.files, path)
            else:
                self._add(self.dirs, path or ".")
        except Exception:
            pass  # never let bookkeeping break the snippet

    def _called_by_project(self) -> bool:
        """True when repository code (the snippet, spaces_code) asked for this, not the import system.

        The import system lists every sys.path folder (the repository root among them) and
        importlib.metadata scans them too; those listings say nothing about the snippet's output, and
        recording them would invalidate every snippet whenever a file is added at the top level.
        """
        frame = sys._getframe(2)
        project = False
        while frame is not None:
            filename = frame.f_code.co_filename
            if "importlib" in filename:
                return False
            if not project and filename.startswith(self.root) and filename != self.runner:
                project = True
            frame = frame.f_back
        return project

    def _add(self, bucket: set[str], path: str) -> None:
        path = os.path.abspath(path)
        if path.startswith(self.root) and path not in self.exclude:
            rel = path[len(self.root):]
            if not IGNORED_PARTS.intersection(rel.split(os.sep)):
                bucket.add(rel.replace(os.sep, "/"))


class _WriteGuard:
    """Audit hook: no write into the repository, from the moment the snippet starts.

    The snippet's working directory is an empty temporary folder, so relative paths
    (``open("x.txt", "w")``, ``Path.cwd() / "y"``) land there and vanish with it. Opening a
    repository file for writing through an absolute path (``Path(spaces_code.__file__).parent``,
    ``..``, a symlink), creating, deleting, renaming, linking or chmod-ing one raises
    ``PermissionError`` naming the path: the snippet fails with its line, and nothing is written.
    This covers what Python code does; a child process or a C library writing by itself is caught
    after the run by the build's comparison of the repository before and after (spaces_build.sandbox).
    """

    # event -> positions of the paths it writes to (``open`` is handled apart: its mode decides)
    EVENTS = {
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
        "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
        "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
        "shutil.rmtree": (0,), "shutil.move": (0, 1), "shutil.copyfile": (1,), "shutil.copytree": (1,),
    }
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def __init__(self, root: str, allowed: list[str]):
        self.root = os.path.realpath(root).rstrip(os.sep) + os.sep
        self.allowed = [os.path.realpath(a).rstrip(os.sep) + os.sep for a in allowed]

    def __call__(self, event, args):
        if event == "open":
            path, mode, flags = args
            if mode is not None:
                if not any(c in mode for c in "wax+"):
                    return
            elif not (flags or 0) & self.WRITE_FLAGS:
                return
            self._check(event, path)
        elif event in self.EVENTS:
            for i in self.EVENTS[event]:
                if i < len(args):
                    self._check(event, args[i])

    def _check(self, event: str, path) -> None:
        if path is None or isinstance(path, int):
            return
        try:
            real = os.path.realpath(os.fsdecode(os.fspath(path)))
        except (TypeError, ValueError):
            return
        inside = real + os.sep
        if not inside.startswith(self.root) or any(inside.startswith(a) for a in self.allowed):
            return
        rel = real[len(self.root):] or "."
        raise PermissionError(errno.EACCES, f"a snippet may not write into the repository ({event}); it runs "
                              "in a temporary working directory: write there, e.g. open('out.txt', 'w')", rel)


# Landlock (Linux >= 5.13) file-system rights that change the file system: write, truncate, create,
# delete, rename / link across folders. Reading and executing are never restricted.
_LL_WRITE = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # WRITE_FILE, REMOVE_*, MAKE_*
_LL_REFER = 1 << 13  # ABI 2: link or rename into another folder
_LL_TRUNCATE = 1 << 14  # ABI 3
_LL_FILE = (1 << 1) | _LL_TRUNCATE  # the rights a rule on a single file may carry


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers to unprivileged processes, 0 when none (not Linux,
    kernel older than 5.13, or a seccomp profile that forbids it)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))  # landlock_create_ruleset
    except (OSError, AttributeError):
        return 0


def _sandbox_repository(root: str, writable: list[str]) -> int:
    """Make the repository read-only for this process and every process it starts (Linux Landlock).

    What Python's audit hook (:class:`_WriteGuard`) cannot see, a child process or a C library
    writing into the repository, the kernel refuses (``EACCES``). Everything else stays writable:
    the rights are granted beneath every entry of each ancestor of the repository except the next
    ancestor, and beneath ``writable`` (the working directory, ``--out``); the repository gets none.
    Needs no privileges, only ``no_new_privs`` (set here: nothing started by a snippet gains
    privileges through set-uid programs). Returns the Landlock ABI version; raises ``OSError`` when
    it cannot be applied (the engine asks for it only where the kernel offers it).
    """
    import ctypes
    import stat

    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.EOPNOTSUPP, "Landlock is not available")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rights = _LL_WRITE | (_LL_REFER if abi >= 2 else 0) | (_LL_TRUNCATE if abi >= 3 else 0)
    handled = ctypes.c_uint64(rights)
    ruleset = libc.syscall(444, ctypes.byref(handled), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    real = os.path.realpath(root)

    def related(path: str) -> bool:  # the repository, inside it, or above it (a symlink to "/")
        return path == real or path.startswith(real + os.sep) or real.startswith(path.rstrip(os.sep) + os.sep)

    def grant(path: str, inside_ok: bool = False) -> None:
        if related(os.path.realpath(path)) and not inside_ok:
            return
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            allowed = rights if stat.S_ISDIR(os.fstat(fd).st_mode) else rights & _LL_FILE
            rule = PathBeneath(allowed, fd)
            if libc.syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
        finally:
            os.close(fd)

    chain = [real]
    while os.path.dirname(chain[-1]) != chain[-1]:
        chain.append(os.path.dirname(chain[-1]))
    chain.reverse()  # "/", ..., the repository
    for parent, child in zip(chain, chain[1:]):
        try:
            entries = [entry.path for entry in os.scandir(parent)]
        except OSError:
            continue
        for path in entries:
            if path != child:
                grant(path)
    for path in writable:  # inside the repository only if TMPDIR is
        if os.path.realpath(path).startswith(real + os.sep):
            grant(path, inside_ok=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:  # landlock_restrict_self
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)
    return abi


def _private_tmp_if_needed(root: str, out: str) -> None:
    """Under Landlock nothing can be created directly inside a folder that contains the repository.
    When the system's temporary folder is one (a repository under /tmp, as in the tests), temporary
    files of the snippet and its children go to a private folder beside ``--out`` instead."""
    import tempfile

    real, system = os.path.realpath(root), os.path.realpath(tempfile.gettempdir())
    if real == system or real.startswith(system.rstrip(os.sep) + os.sep):
        private = os.path.join(os.path.dirname(out), "tmp")
        os.makedirs(private, exist_ok=True)
        os.environ["TMPDIR"] = private
        tempfile.tempdir = private


def _module_files(root: str, exclude: set[str]) -> set[str]:
    prefix = root.rstrip(os.sep) + os.sep
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.abspath(path)
        if path.startswith(prefix) and path not in exclude:
            rel = path[len(prefix):]
            if not IGNORED_PARTS.intersection(rel.split(os.sep)):
                found.add(rel.replace(os.sep, "/"))
    return found


def _failure(exc: BaseException, snippet: str) -> dict:
    """Type, message and the snippet line where the exception came from; prints the traceback."""
    tb = exc.__traceback__
    line = None
    walker = tb
    while walker is not None:
        if walker.tb_frame.f_code.co_filename == snippet:
            line = walker.tb_lineno
        walker = walker.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == snippet:
        line = exc.lineno
    # Show the traceback from the snippet's own frame on: the runner and runpy are noise.
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != snippet:
        start = start.tb_next
    sys.stdout.flush()
    traceback.print_exception(type(exc), exc, start or tb)
    sys.stderr.flush()
    return {"type": type(exc).__name__, "message": str(exc), "line": line}


def _save_figures(out: str) -> list[str]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "spaces"  # stable ids inside the SVG
    names = []
    for i, num in enumerate(plt.get_fignums()[:FIGURE_LIMIT], start=1):
        name = f"figure-{i}.svg"
        plt.figure(num).savefig(os.path.join(out, name), format="svg", bbox_inches="tight",
                                metadata={"Date": None})
        names.append(name)
    plt.close("all")
    return names


def _versions() -> dict:
    from importlib import metadata

    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in ("torch", "numpy"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = None
        versions[name] = str(version) if version else None
    return versions


def _peak_memory_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(max(own, children) / scale, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--snippet", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ignore", default="", help="comma-separated folder names that are never dependencies")
    parser.add_argument("--sandbox", choices=["landlock", "off"], default="off")
    parser.add_argument("--build-pid", type=int, default=None, help="exit at once if this is not the parent")
    args = parser.parse_args()
    _set_parent_death_signal(args.build_pid)
    IGNORED_PARTS.update(filter(None, args.ignore.split(",")))

    root = os.path.abspath(args.root)
    snippet = os.path.abspath(args.snippet)
    out = os.path.abspath(args.out)
    runner = os.path.abspath(__file__)
    exclude = {snippet, runner}

    # Like `python snippet.py`: the snippet's folder first on sys.path, not this script's.
    sys.path[0] = os.path.dirname(snippet)
    sys.argv = [snippet]
    random.seed(SEED)
    sys.meta_path.insert(0, _SeedAfterImport())
    for name in _SeedAfterImport.NAMES:  # imported already: forked from the pre-imported server
        if name in sys.modules:
            _seed(name, sys.modules[name])
    recorder = _Recorder(root, exclude, runner)
    sys.addaudithook(recorder)
    # Never switched off: the runner itself only writes under --out, and the working directory.
    sys.addaudithook(_WriteGuard(root, [os.getcwd(), out]))
    # The engine asks for the kernel's guard where the kernel has one; elsewhere it compares the
    # repository before and after instead.
    sandbox = 0
    if args.sandbox == "landlock":
        _private_tmp_if_needed(root, out)
        sandbox = _sandbox_repository(root, [os.getcwd(), out])

    result: dict = {"status": "ok"}
    start = time.perf_counter()
    recorder.active = True
    try:
        runpy.run_path(snippet, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            result = {"status": "failed", "error": _failure(exc, snippet)}
            result["error"]["message"] = f"exit status {exc.code}"
    except BaseException as exc:  # noqa: BLE001 - everything the snippet raises is reported
        result = {"status": "failed", "error": _failure(exc, snippet)}
    finally:
        recorder.active = False
    seconds = time.perf_counter() - start
    sys.stdout.flush()
    sys.stderr.flush()

    if result["status"] == "ok":
        try:
            result["figures"] = _save_figures(out)
        except Exception as exc:  # noqa: BLE001
            result = {"status": "failed", "error": _failure(exc, snippet)}
            result["error"]["message"] = f"saving the figures failed: {exc}"
    device = os.environ.get("SPACES_DEVICE", "cpu")
    device_name = None
    torch = sys.modules.get("torch")
    if device == "cuda" and torch is not None:
        try:
            device_name = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            device_name = None
    result.update(
        seconds=round(seconds, 3),
        peak_memory_mb=_peak_memory_mb(),
        files=sorted(_module_files(root, exclude) | recorder.files),
        dirs=sorted(recorder.dirs),
        versions=_versions(),
        device=device,
        device_name=device_name,
        sandbox=f"landlock {sandbox}" if sandbox else None,
    )
    tmp = os.path.join(out, "result.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, os.path.join(out, "result.json"))
    sys.stdout.flush()
    # Skip interpreter teardown (atexit handlers of torch/keras, thread joins): the result is written.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
