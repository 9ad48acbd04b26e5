"""The snippet cache: one typed entry per snippet run, in content-addressed files.

``.cache/snippets/<lookup>.json``: ``lookup`` is the SHA-256 of the snippet's path, its source and the
environment (Python, torch, NumPy, device, runner, the snippets' environment variables), all known
before the run, so a build finds the entry without running anything. The entry records every
repository file the run imported (transitively) or read and every folder it listed, with their
hashes; its ``key`` is the SHA-256 of the source, those dependencies and the environment. A warm build
recomputes the key from the files as they are now: a change in ``spaces_code/foo.py`` re-runs exactly
the snippets that imported it.

Figures are stored content-addressed in ``.cache/snippet-figures/<sha256>.svg`` before the entry that
names them, and every file is written atomically, so a build killed at any moment leaves either the
old entry or the new one, never half of one. Each entry holds the seconds its run took (shards are
planned from them). Entries of different snippets never share a file: merging the caches of
several machines is copying their files into one folder. Failures are never cached.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

SCHEMA = 2


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary sibling, fsync, then rename over ``path``: readers see old or new.
    ``durable=False`` skips the fsyncs, for caches whose loss after a crash only costs time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if not durable:
        return
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def prune_unused(folder: Path, pattern: str, used: set[Path], grace: float = 3600.0) -> None:
    """Remove the files of ``folder`` matching ``pattern`` that this build did not use (``used``) and
    nobody wrote for ``grace`` seconds (a build running beside this one may be using them)."""
    if not folder.is_dir():
        return
    now = time.time()
    for path in folder.glob(pattern):
        try:
            if path not in used and now - path.stat().st_mtime > grace:
                path.unlink(missing_ok=True)
        except OSError:
            pass


@dataclasses.dataclass
class CacheEntry:
    """What one successful run of a snippet produced, and what it depended on."""

    snippet: str  # "snippets/<slug>/<name>.py"
    article: str
    snippet_sha256: str
    deps: list[list[str]]  # [kind ("file" | "dir"), repository-relative path, sha256]
    output: str  # what it printed (stdout and stderr interleaved), the head when truncated
    output_tail: str  # the end of the output when truncated, else ""
    output_bytes: int
    truncated: bool
    seconds: float  # the run's measured duration
    peak_memory_mb: float
    device: str
    device_name: str | None
    versions: dict
    executed_at: str  # ISO time (UTC) the run started
    timing_dependent: bool
    figures: list[str] = dataclasses.field(default_factory=list)  # sha256 of each SVG, in order
    env: dict = dataclasses.field(default_factory=dict)
    key: str = ""
    schema: int = SCHEMA

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> "CacheEntry | None":
        """The entry, or None when the data is not an entry of this schema."""
        try:
            raw = json.loads(data)
        except ValueError:
            return None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in names})
        except TypeError:
            return None


def cache_key(snippet_sha: str, deps: list[list[str]], env: dict) -> str:
    blob = json.dumps({"snippet": snippet_sha, "deps": sorted(deps), "env": env}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def lookup_key(rel: str, snippet_sha: str, env: dict) -> str:
    """Names the entry's file: everything about a run that is known before it."""
    blob = json.dumps({"snippet": rel, "sha256": snippet_sha, "env": env}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


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


class Cache:
    def __init__(self, root: Path):
        self.root = root
        self.entries = root / ".cache" / "snippets"
        self.figures = root / ".cache" / "snippet-figures"

    def entry_path(self, lookup: str) -> Path:
        return self.entries / f"{lookup}.json"

    def load(self, lookup: str) -> CacheEntry | None:
        try:
            return CacheEntry.from_json(self.entry_path(lookup).read_bytes())
        except OSError:
            return None  # missing or unreadable: the snippet simply runs again

    def all_entries(self) -> list[CacheEntry]:
        found = []
        if self.entries.is_dir():
            for path in sorted(self.entries.glob("*.json")):
                try:
                    entry = CacheEntry.from_json(path.read_bytes())
                except OSError:
                    entry = None
                if entry is not None:
                    found.append(entry)
        return found

    def figure_path(self, sha: str) -> Path:
        return self.figures / f"{sha}.svg"

    def store_figure(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.figure_path(sha)
        if not path.exists():
            atomic_write(path, data)
        return sha

    def store(self, lookup: str, entry: CacheEntry, figures: list[bytes]) -> CacheEntry:
        """Figures first (content-addressed), then the entry that names them."""
        entry.figures = [self.store_figure(data) for data in figures]
        atomic_write(self.entry_path(lookup), entry.to_json())
        return entry

    def discard(self, lookup: str) -> None:
        self.entry_path(lookup).unlink(missing_ok=True)

    def is_fresh(self, entry: CacheEntry | None, snippet_sha: str, env: dict, hasher: Hasher) -> bool:
        if entry is None:
            return False
        deps = [[kind, rel, hasher(kind, rel)] for kind, rel, _ in entry.deps]
        if entry.key != cache_key(snippet_sha, deps, env):
            return False
        return all(self.figure_path(sha).is_file() for sha in entry.figures)

    def prune(self, keep: set[str], grace: float = 3600.0) -> None:
        """Drop the entries whose lookup is not in ``keep`` (snippets deleted or changed since), and
        figures no entry names once they are ``grace`` seconds old (a build beside us may want them)."""
        self.prune_temporary()
        if not self.entries.is_dir():
            return
        for folder in self.entries.iterdir():  # entries of the older layout (a folder per article)
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        referenced = set()
        for path in self.entries.glob("*.json"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                continue
            try:
                entry = CacheEntry.from_json(path.read_bytes())
            except OSError:
                entry = None
            if entry is not None:
                referenced.update(entry.figures)
        now = time.time()
        if self.figures.is_dir():
            for path in self.figures.glob("*.svg"):
                try:
                    if path.stem not in referenced and now - path.stat().st_mtime > grace:
                        path.unlink(missing_ok=True)
                except OSError:
                    pass

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
