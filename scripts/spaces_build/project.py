"""The repository as the build sees it: its root, the folders that are never sources, copies of it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Folders that are never the project's sources: environments, caches, build outputs. The one list
# (the runner's dependency recording, the repository watch, validation's copies, reproducibility).
NOT_SOURCES = frozenset({".venv", "venv", ".git", ".cache", "site", "__pycache__", "node_modules",
                         ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", "build"})


def find_root(start: Path | None = None) -> Path:
    """The folder holding ``mkdocs.yml``, from ``start`` (default: the working directory) upwards."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "mkdocs.yml").is_file():
            return folder
    return here


def is_source(rel: str) -> bool:
    """False for anything under a :data:`NOT_SOURCES` folder or an ``*.egg-info`` folder."""
    parts = rel.replace(os.sep, "/").split("/")
    return not any(p in NOT_SOURCES or p.endswith(".egg-info") for p in parts[:-1])


def source_files(repo: Path) -> list[str]:
    """The project's sources, repository-relative: ``git ls-files -co --exclude-standard``, else a walk."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                                capture_output=True, check=True).stdout.decode().split("\0")
        rels = [r for r in listed if r]
    except (OSError, subprocess.CalledProcessError):
        rels = []
        for dirpath, dirnames, filenames in os.walk(repo):
            dirnames[:] = [d for d in dirnames if d not in NOT_SOURCES and not d.endswith(".egg-info")]
            rels += [os.path.relpath(os.path.join(dirpath, f), repo) for f in filenames]
    return sorted(r for r in rels if is_source(r) and (repo / r).is_file())


def copy_tree(repo: Path, dest: Path, rels: list[str] | None = None) -> Path:
    """Copy ``rels`` (default: every source file of ``repo``) into ``dest``, keeping file times."""
    for rel in source_files(repo) if rels is None else rels:
        src = repo / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(*NOT_SOURCES, "*.pyc"))
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest
