"""Reproducible builds and kill -9 safety, on temporary mini archives (``tests/mini_archive.py``: the
real configuration with three real posts: two figures and the timing-dependent word count).

- Two clean builds from nothing give identical snippet outputs (text and figure bytes) and identical
  site files, except the declared timing-dependent output, the run report's measurements and the
  feeds' / sitemap's build time (``spaces_build.reproducible`` defines the comparison and
  ``spaces check-reproducible`` runs it on the whole archive).
- A build killed with SIGKILL at different moments (MkDocs starting, validation, a snippet running,
  pages being written) leaves a cache in which every entry is whole; the next build succeeds and
  produces the same pages and cache entries as a clean build.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import mini_archive
from spaces_build import reproducible as check
from spaces_build.cache import Cache, CacheEntry

pytestmark = pytest.mark.slow

REPO = mini_archive.REPO


@pytest.fixture(scope="module")
def clean_builds(built_mini_archive, tmp_path_factory) -> tuple[Path, Path]:
    """Two mini archives, each built once from nothing (the first is the session's shared one)."""
    project = mini_archive.make(tmp_path_factory.mktemp("reproducible") / "b")
    proc = mini_archive.build(project)
    assert proc.returncode == 0, proc.stderr
    return built_mini_archive, project


# --------------------------------------------------------------------------------------------------
# reproducibility


def test_two_clean_builds_are_identical(clean_builds):
    a, b = clean_builds
    assert check.compare(a, b) == []
    outputs = check.snippet_outputs(a)
    # every snippet of the three posts' folders (mini_archive copies them whole) was executed and cached
    snippets = sorted(p.relative_to(a).as_posix() for p in (a / "snippets").rglob("*.py"))
    assert sorted(outputs) == snippets
    assert {mini_archive.TIMING_SNIPPET, *mini_archive.FIGURE_SNIPPETS} <= set(snippets)
    for rel in mini_archive.FIGURE_SNIPPETS:  # the figures really are byte-identical
        assert outputs[rel]["figures"] and outputs[rel]["figures"] == check.snippet_outputs(b)[rel]["figures"]
    # Only the run report and the feeds' build time differ in raw bytes besides the timing output.
    differing = {p.relative_to(a / "site").as_posix() for p in (a / "site").rglob("*")
                 if p.is_file() and p.read_bytes() != (b / "site" / p.relative_to(a / "site")).read_bytes()}
    allowed = {"executions/index.html", "executions.json", "feed_rss_created.xml", "feed_rss_updated.xml",
               "feed_json_created.json", "feed_json_updated.json",  # the feeds carry the outputs too
               "search/search_index.json", "sitemap.xml", "sitemap.xml.gz", "multiprocess-speedup/index.html",
               "notebooks/multiprocess-speedup/index.html",
               "notebooks/multiprocess-speedup/multiprocess-speedup.ipynb"}
    allowed |= {check.figure_src_uri(rel, i) for rel, out in outputs.items() if out["timing"]  # their figures
                for i in range(1, len(out["figures"]) + 1)}
    assert differing <= allowed, differing - allowed


def test_timing_dependent_output_shows_a_note(clean_builds):
    text = (clean_builds[0] / "site/multiprocess-speedup/index.html").read_text(encoding="utf-8")
    start = text.index(f'data-snippet="{mini_archive.TIMING_SNIPPET}"')
    div = text[start:text.index("</div>", start)]
    assert 'data-timing-dependent="true"' in div
    assert "这段代码测量的是运行时间" in div and "不参与可重复性比较" in div
    for rel in mini_archive.FIGURE_SNIPPETS:  # the others carry no such mark
        start = text.find(f'data-snippet="{rel}"')
        assert start < 0 or 'data-timing-dependent' not in text[start:text.index("</div>", start)]


def test_the_comparison_excludes_the_timing_output_and_nothing_else(clean_builds, tmp_path):
    """Tampering with any other output, figure or page is reported; with the timing output, not."""
    a, b = clean_builds
    c = Path(shutil.copytree(b, tmp_path / "c"))
    # Another measurement of the timing snippet, in its cache entry and on every page showing it.
    cache = Cache(c)
    entry_path = next(p for p in cache.entries.glob("*.json")
                      if CacheEntry.from_json(p.read_bytes()).snippet == mini_archive.TIMING_SNIPPET)
    entry = json.loads(entry_path.read_text(encoding="utf-8"))
    line = next(ln for ln in entry["output"].splitlines() if ln.startswith("serial ") and ln.endswith(" s"))
    entry["output"] = entry["output"].replace(line, "serial     9.99 s")
    entry_path.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
    shown = 0
    for path in (c / "site").rglob("*"):
        if path.suffix in (".html", ".json", ".ipynb", ".xml") and line in path.read_text(encoding="utf-8"):
            path.write_text(path.read_text(encoding="utf-8").replace(line, "serial     9.99 s"), encoding="utf-8")
            shown += 1
    assert shown >= 3  # its page, the notebook, its rendered page (and the search index)
    assert check.compare(a, c) == []  # a different measurement: allowed

    mitchell = c / "site/mitchell-approximation/index.html"
    text = mitchell.read_text(encoding="utf-8")
    mitchell.write_text(text.replace("max error 0.111", "max error 0.112", 1), encoding="utf-8")
    figure_entry = next(CacheEntry.from_json(p.read_bytes()) for p in cache.entries.glob("*.json")
                        if CacheEntry.from_json(p.read_bytes()).snippet == mini_archive.FIGURE_SNIPPETS[0])
    figure = cache.figure_path(figure_entry.figures[0])  # a deterministic snippet's figure
    figure.write_bytes(figure.read_bytes().replace(b"<svg", b"<svg data-x='1'", 1))
    (c / "site/about/index.html").write_text("changed", encoding="utf-8")
    problems = check.compare(a, c)
    assert any(p.startswith("site/mitchell-approximation/index.html: differs") for p in problems), problems
    assert any(": figure 1 differs" in p for p in problems), problems
    assert any(p.startswith("site/about/index.html: differs") for p in problems), problems


def _notebook_page(timing_output: str, other_output: str) -> str:
    """A rendered notebook page as mkdocs-jupyter writes it: a timing-dependent cell, then another."""
    def cell(n: int, source: str, output: str) -> str:
        return (f'<div class="jp-Cell jp-CodeCell jp-Notebook-cell" id="cell-id=nb-{n}">\n'
                '<div class="jp-Cell-inputWrapper" tabindex="0"><div class="highlight-ipynb hl-python"><pre>'
                f'{source}</pre></div></div>\n<div class="jp-Cell-outputWrapper">\n'
                '<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="text/plain">\n'
                f'<pre>{output}</pre>\n</div>\n</div>\n</div>\n')
    timing = '<span></span><span class="c1"># spaces: timing-dependent</span>\n<span class="kn">import</span> time'
    plain = '<span></span><span class="kn">import</span> math'
    return ('<html><body><div class="jupyter-wrapper"><div class="jp-Notebook">\n'
            + cell(0, timing, timing_output) + cell(1, plain, other_output)
            + '</div> <!-- jp-Notebook -->\n</div></body></html>\n')


def test_notebook_pages_mask_the_outputs_of_timing_dependent_cells_only(tmp_path):
    """The rendered notebook page: any output of the cell that declares itself timing-dependent is
    masked (not only an output the caches' texts can be substituted into), every other cell compared."""
    sites = {}
    for name, timing_output, other_output in [("a", "serial     0.30 s\nspeedup 1.02", "pi = 3.1416"),
                                              ("b", "serial     0.41 s\n&lt;a different table&gt;", "pi = 3.1416"),
                                              ("c", "serial     0.30 s\nspeedup 1.02", "pi = 3.1417")]:
        page = tmp_path / name / "notebooks" / "nb" / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(_notebook_page(timing_output, other_output), encoding="utf-8")
        sites[name] = tmp_path / name
    assert check.compare_sites(sites["a"], sites["b"]) == []
    problems = check.compare_sites(sites["a"], sites["c"])
    assert len(problems) == 1 and problems[0].startswith("site/notebooks/nb/index.html: differs"), problems
    assert "3.1416" in problems[0] and "3.1417" in problems[0]
    # the same markup elsewhere (an article page) is compared in full: its timing output is masked by
    # the caches' texts (compare()), never by position
    for name in ("a", "b"):
        (sites[name] / "nb").mkdir()
        (sites[name] / "nb" / "index.html").write_bytes((sites[name] / "notebooks/nb/index.html").read_bytes())
    assert [p.split(":")[0] for p in check.compare_sites(sites["a"], sites["b"])] == ["site/nb/index.html"]


# --------------------------------------------------------------------------------------------------
# kill -9


def _snippet_pids(build_pid: int) -> set[int]:
    """The running snippet processes of a build: its descendants that run ``spaces_build/runner.py``
    (``--no-preload``: a new interpreter) or were forked by its fork server into a snippet's working
    folder (``spaces-snippet-*/cwd``: /proc shows the server's command line for those)."""
    parents: dict[int, list[int]] = {}
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(proc_dir.name))
    found, todo = set(), list(parents.get(build_pid, []))
    while todo:
        pid = todo.pop()
        todo += parents.get(pid, [])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        snippet_cwd = Path(cwd).name == "cwd" and Path(cwd).parent.name.startswith("spaces-snippet-")
        if _alive(pid) and ("spaces_build/runner.py" in cmdline or snippet_cwd):
            found.add(pid)
    return found


def _kill_when(project: Path, moment) -> set[int]:
    """Start a build, SIGKILL it when ``moment(elapsed, build_pid)`` is true; returns the pids of the
    snippet processes that were running at that moment."""
    proc = subprocess.Popen(mini_archive.build_cmd(), cwd=project, env=mini_archive.clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        while proc.poll() is None and not moment(time.monotonic() - start, proc.pid):
            time.sleep(0.01)
            assert time.monotonic() - start < 300, "the moment never came"
        assert proc.poll() is None, "the build ended before the moment to kill it"
        running = _snippet_pids(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        return running
    finally:
        proc.kill()
        proc.wait()


def _assert_cache_is_whole(project: Path) -> None:
    """Every entry is complete JSON naming existing figures; figures are intact; the rest is
    temporary files that are never read as entries."""
    cache = project / ".cache"
    for path in (cache / "snippets").rglob("*"):
        if path.is_dir():
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an interrupted atomic write: never read (only <name>.json is)
        assert path.suffix == ".json", path
        entry = json.loads(path.read_text(encoding="utf-8"))
        assert entry["key"] and entry["snippet"].startswith("snippets/"), path
        for sha in entry["figures"]:
            assert (cache / "snippet-figures" / f"{sha}.svg").is_file(), (path, sha)
    for path in (cache / "snippet-figures").glob("*"):
        if not path.name.endswith(".tmp"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem, f"torn figure {path}"
    for path in (cache / "notebooks").glob("*.ipynb"):
        json.loads(path.read_text(encoding="utf-8"))


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in ("Z", "X")
    except OSError:
        return False


def test_kill_9_takes_the_snippets_children_along(tmp_path):
    """Not only the snippet's process dies with a killed build, its children do too (a hanging
    ``subprocess`` or ``multiprocessing`` worker would otherwise run forever)."""
    from test_engine import LIGHT_YML, make_project

    (tmp_path / "out").mkdir()
    pids = tmp_path / "out" / "pids.txt"  # outside the project (beside it): the snippet may write there
    project = make_project(tmp_path / "p", {
        "docs/index.md": "# Home\n",
        "docs/posts/demo.md": '---\ntitle: t\n---\n# t\n\n```python\n--8<-- "snippets/demo/family.py"\n```\n',
        "spaces_code/__init__.py": "",
        "snippets/demo/family.py": (
            "import multiprocessing, os, subprocess, time\n"
            "def nap():\n    time.sleep(300)\n"
            "if __name__ == '__main__':\n"
            "    child = subprocess.Popen(['sleep', '300'])\n"
            "    worker = multiprocessing.Process(target=nap)\n"
            "    worker.start()\n"
            f"    open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}} {{worker.pid}}')\n"
            "    time.sleep(300)\n"),
    }, LIGHT_YML)
    _kill_when(project, lambda t, pid: pids.exists() and len(pids.read_text().split()) == 3)
    family = [int(p) for p in pids.read_text().split()]
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in family if _alive(pid)]


def test_kill_9_at_any_moment_then_the_next_build_is_the_clean_one(clean_builds, tmp_path):
    project = mini_archive.make(tmp_path / "killed")
    moments = {
        "after 0.5 s (MkDocs starting)": lambda t, pid: t >= 0.5,
        "after 1.5 s (configuration, validation)": lambda t, pid: t >= 1.5,
        "while a snippet runs": lambda t, pid: bool(_snippet_pids(pid)),
        "while the site is being written": lambda t, pid: (project / "site" / "assets").is_dir(),
    }
    for name, moment in moments.items():
        running = _kill_when(project, moment)
        assert running or name != "while a snippet runs"
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in running if _alive(pid)], f"{name}: a snippet outlived the killed build"
        _assert_cache_is_whole(project)
    # Leftovers of interrupted writes, as a kill inside atomic_write leaves them.
    torn = project / ".cache/snippets/.0123abcd.json.k9x.tmp"
    torn.write_text('{"schema": 2, "snippet": "snippets/mitch', encoding="utf-8")
    old = project / ".cache/snippet-figures/.0123.svg.old.tmp"
    old.write_text("<svg", encoding="utf-8")
    os.utime(old, (time.time() - 3600, time.time() - 3600))

    proc = mini_archive.build(project)
    assert proc.returncode == 0, proc.stderr
    _assert_cache_is_whole(project)
    assert check.compare(clean_builds[0], project) == []  # same pages, same cache entries
    assert torn.exists() and not old.exists()  # a fresh leftover is ignored, an abandoned one removed
