"""Snippets must leave the repository as they found it.

Three guards, from the inside out:

- the runner's audit hook refuses Python-level writes into the repository (``spaces_build.runner``);
- where the kernel offers Landlock (Linux >= 5.13), the runner makes the repository read-only for the
  snippet's whole process tree (:func:`sandbox_mode` says ``landlock``);
- elsewhere (or with ``sandbox: off``), :class:`RepoWatch` compares the repository before and after
  each snippet and fails the build naming the snippets that ran when it changed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .project import NOT_SOURCES
from .runner import landlock_abi

# Of .git, only what could run code later (hooks) or redirect it (config): the rest changes with commits.
SNAPSHOT_GIT = (".git/hooks", ".git/config")


def sandbox_mode(requested: str = "auto") -> str:
    """How snippets are kept from writing into the repository, besides the runner's audit hook:
    ``landlock`` where the kernel offers it (unless ``requested`` is ``off``), else ``off``."""
    if requested == "off":
        return "off"
    return "landlock" if landlock_abi() > 0 else "off"


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
            dirnames[:] = [d for d in dirnames if d not in NOT_SOURCES]
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
    the repository (``spaces_build.runner``). Where the kernel offers Landlock, the repository is
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

    def check(self, record) -> None:
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
