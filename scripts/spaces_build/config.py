"""The build's options: one dataclass, its defaults written once.

The MkDocs plugin's config schema (``spaces_build.plugin``) takes its defaults from here, and the
``spaces`` command line (``spaces_build.cli``) its flags' defaults; ``mkdocs.yml`` may override any of
them (``!ENV`` where CI does). Nothing travels through environment variables but what a snippet's
own process is given.
"""
from __future__ import annotations

import dataclasses
import os

DEFAULT_TIMEOUT = 300.0
DEVICES = ("auto", "cpu", "cuda")


class EngineError(Exception):
    """One or more snippets failed or timed out, or the options are wrong; the message says which."""


@dataclasses.dataclass
class Options:
    """How one build executes its snippets."""

    jobs: int = 0  # snippets run in parallel; 0 means one per core
    device: str = "auto"  # cpu, cuda or auto (cuda when torch sees one)
    timeout: float = DEFAULT_TIMEOUT  # seconds per snippet; the process group is killed after it
    keep_going: bool = False  # run every snippet and report all failures, instead of stopping early
    serve: bool = False  # show a failure on its page instead of failing the build (mkdocs serve)
    execute: bool = True  # False: never execute; stale snippets fail the build (CI after merging shards)
    sandbox: str = "auto"  # auto: Landlock where the kernel offers it, else the repository watch; off: the watch
    preload: bool = True  # run snippets through the pre-imported fork server where there is one
    shard: tuple[int, int] | None = None  # (K, N): execute only shard K of N (with --execute-only)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise EngineError(f"device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.sandbox not in ("auto", "off"):
            raise EngineError(f"sandbox {self.sandbox!r}: use auto or off")
        if self.jobs < 0:
            raise EngineError(f"jobs {self.jobs}: use a positive number, or 0 for one per core")
        if self.timeout <= 0:
            raise EngineError(f"timeout {self.timeout}: must be positive")

    @property
    def workers(self) -> int:
        return self.jobs or os.cpu_count() or 1
