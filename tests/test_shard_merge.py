"""Sharded execution (issue 14): N = 3 machines each run `spaces build --execute-only --shard K/3`
on their own copy; their `.cache/` folders are merged by copying files; a build of the merged cache
executes nothing and gives the site a single build gives.

A simulation of the publish workflow (.github/workflows/publish.yml) on the mini archive.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import mini_archive
from spaces_build.reproducible import compare

pytestmark = pytest.mark.slow

N = 3


def _entries(project: Path) -> dict[str, dict]:
    """snippet rel -> its cache entry."""
    found = {}
    for path in (project / ".cache" / "snippets").glob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        found[entry["snippet"]] = entry
    return found


# What a shard produces: entries and figures, content-addressed. (The rest of .cache/ is per machine:
# the validation memo, the device probe, rendered math; the merged build makes its own.)
MERGED = ("snippets", "snippet-figures")


def _merge(shards: list[Path], dest: Path) -> None:
    """Copy every file of the shards' cache entries and figures into dest's .cache; a path present
    twice must hold the same bytes."""
    for shard in shards:
        for path in sorted(p for folder in MERGED for p in (shard / ".cache" / folder).rglob("*")):
            if path.is_dir() or path.name.endswith(".tmp"):
                continue
            target = dest / ".cache" / path.relative_to(shard / ".cache")
            if target.exists():
                assert target.read_bytes() == path.read_bytes(), f"merge conflict at {target}"
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _feed_differs_only_in_digits(a: Path, b: Path, problem: str) -> bool:
    rel = problem.split(":", 1)[0]
    if not re.fullmatch(r"site/feed_[a-z_]+\.xml", rel):
        return False
    digits = re.compile(r"\d+")
    return digits.sub("#", (a / rel).read_text(encoding="utf-8")) == digits.sub("#", (b / rel).read_text(encoding="utf-8"))


def _sources(built: Path, dest: Path) -> Path:
    """The sources of a built project: everything but its cache and site (what a fresh clone has)."""
    return shutil.copytree(built, dest, ignore=lambda folder, names: (
        [n for n in names if n in (".cache", "site")] if Path(folder) == built else []))


def test_three_shards_merged_give_the_single_build(built_mini_archive, tmp_path):
    # The single build is the session's shared cold build of the mini archive (read, never changed);
    # the shards start from its sources.
    single = built_mini_archive
    base = _sources(single, tmp_path / "base")
    assert not (base / ".cache").exists() and not (base / "site").exists()
    snippets = sorted(p.relative_to(base).as_posix() for p in (base / "snippets").rglob("*.py")
                      if not p.name.startswith("_"))

    shards = []
    for k in range(1, N + 1):
        copy = shutil.copytree(base, tmp_path / f"shard-{k}")
        done = mini_archive.build(copy, "--execute-only", "--shard", f"{k}/{N}")
        assert done.returncode == 0, done.stderr[-3000:]
        assert not (copy / "site").exists()  # executed into the cache, built nothing
        shards.append(copy)
    ran = [set(_entries(copy)) for copy in shards]
    # Each snippet ran in exactly one shard: a partition of the archive's snippets.
    assert sorted(rel for part in ran for rel in part) == snippets
    assert sum(1 for part in ran if part) >= 2  # the work really was split

    merged = shutil.copytree(base, tmp_path / "merged")
    _merge(shards, merged)
    done = mini_archive.build(merged, "--no-execute", "--site-dir", str(merged / "site"))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((merged / "site" / "executions.json").read_text(encoding="utf-8"))
    assert sorted(row["snippet"] for row in rows) == snippets
    assert all(row["cached"] for row in rows)  # nothing executed in the merged build

    problems = compare(single, merged)
    # The timing-dependent snippet's output also reaches the RSS feeds, as plain text folded and cut
    # by the feed plugin, which spaces_build.reproducible does not mask there (its pages, notebooks,
    # search index and cache entries it does mask, and compares everything else byte for byte). In the
    # feeds alone, allow differing digits (the measured seconds) and nothing else.
    leftover = [p for p in problems if not _feed_differs_only_in_digits(single, merged, p)]
    assert leftover == []


def test_no_execute_refuses_a_cache_that_misses_a_snippet(built_mini_archive, tmp_path):
    # The shared build's cache without one snippet's entry: what a merge that lost a shard leaves.
    project = Path(shutil.copytree(built_mini_archive, tmp_path / "project"))
    entries = sorted((project / ".cache" / "snippets").glob("*.json"))
    assert len(entries) >= 2
    missing = json.loads(entries[0].read_text(encoding="utf-8"))["snippet"]
    entries[0].unlink()
    done = mini_archive.build(project, "--no-execute", "--site-dir", str(project / "site"))
    assert done.returncode != 0
    assert "not in the cache" in done.stderr and missing in done.stderr
