"""The benchmark suite must not rot: its synthetic archive validates and builds, its helpers hold.

No timings are asserted here (benchmarks/RESULTS.md holds the measured numbers): only that the
generator of ``benchmarks/synthetic.py`` produces a project that ``spaces validate`` accepts and
``spaces build`` builds strictly, with one executed snippet per article, and that the pieces of
``benchmarks/run.py`` that the full run depends on behave.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.run as bench  # the repository root is on pytest's pythonpath (pyproject.toml)
from spaces_build import parsing
from spaces_build import validation as validate

REPO = Path(__file__).resolve().parents[1]
synthetic = bench.synthetic  # benchmarks/synthetic.py, as the suite imports it

ARTICLES = 4


@pytest.fixture
def archive(tmp_path) -> Path:
    """A fresh synthetic archive for each test (generating one takes well under a second): validating
    or building writes ``.cache/`` into it, and no test may see what another one wrote."""
    return synthetic.generate(tmp_path / "synthetic", ARTICLES, modules=2)


def test_synthetic_archive_validates(archive):
    problems = validate.validate(archive)
    assert problems == [], "\n".join(map(str, problems))


def test_synthetic_archive_has_what_the_scale_benchmark_counts(archive):
    posts = sorted((archive / "docs" / "posts").glob("*.md"))
    assert [p.stem for p in posts] == [synthetic.slug_of(i) for i in range(1, ARTICLES + 1)]
    taxonomy = synthetic.yaml.safe_load((archive / "taxonomy.yml").read_text(encoding="utf-8"))
    for path in posts:
        text = path.read_text(encoding="utf-8")
        meta = parsing.front_matter(text).data
        assert meta["categories"][0] in taxonomy["categories"]
        assert meta["tags"] and set(meta["tags"]) <= set(taxonomy["tags"])
        assert "\\begin{equation}" in text and "$$" in text and "\\eqref{" in text  # formulas
        assert f'--8<-- "snippets/{path.stem}/demo.py"' in text
    assert sorted(p.name for p in (archive / "spaces_code").glob("synth_*.py")) == ["synth_00.py", "synth_01.py"]
    # a function of its arguments only: a second run writes the same tree
    again = synthetic.generate(archive.parent / "again", ARTICLES, modules=2)
    assert _tree(again) == _tree(archive)


@pytest.mark.slow
def test_synthetic_archive_builds_with_one_executed_snippet_per_article(archive, tmp_path):
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run([sys.executable, "scripts/build.py", "--site-dir", str(site), "--jobs", "2",
                           "--device", "cpu"], cwd=archive, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    rows = json.loads((site / "executions.json").read_text(encoding="utf-8"))
    assert len(rows) == ARTICLES and all(r["status"] == "ok" and not r["cached"] for r in rows)
    # the line benchmarks/run.py reads for the parallel speedup
    m = bench.EXEC_LINE.search(proc.stderr)
    assert m and int(m.group(1)) == ARTICLES and int(m.group(3)) == 2
    page = (site / synthetic.slug_of(1) / "index.html").read_text(encoding="utf-8")
    assert 'class="snippet-output"' in page and "S_11 = 1.5580" in page
    assert page.count('class="arithmatex"') >= 5


def test_plain_config_drops_only_the_execution_plugin(tmp_path):
    from spaces_build.cli import read_yaml

    (tmp_path / "mkdocs.yml").write_text((REPO / "mkdocs.yml").read_text(encoding="utf-8"), encoding="utf-8")
    plain_text = bench.write_plain_config(tmp_path).read_text(encoding="utf-8")
    full_text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")

    def plugins(text):
        path = tmp_path / "read.yml"
        path.write_text(text, encoding="utf-8")
        return [p if isinstance(p, str) else next(iter(p)) for p in read_yaml(path)["plugins"]]

    assert "spaces" in plugins(full_text) and "spaces-site" in plugins(full_text)
    assert plugins(plain_text) == [p for p in plugins(full_text) if p != "spaces"]
    full, plain = full_text.splitlines(), plain_text.splitlines()
    start = full.index("  - spaces:")
    removed = full[start:start + len(full) - len(plain)]
    assert full[:start] + full[start + len(removed):] == plain  # one block, nothing else
    assert all(line.startswith("      ") or not line.strip() for line in removed[1:])  # its options


def test_page_cache_switch_is_one_option_of_the_execution_plugin(tmp_path):
    from spaces_build.cli import read_yaml

    path = tmp_path / "mkdocs.yml"
    path.write_text(bench.without_page_cache((REPO / "mkdocs.yml").read_text(encoding="utf-8")), encoding="utf-8")
    entries = [p for p in read_yaml(path)["plugins"] if isinstance(p, dict) and "spaces" in p]
    assert len(entries) == 1 and entries[0]["spaces"]["page_cache"] is False
    assert entries[0]["spaces"]["jobs"] == 0  # the other options kept


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux >= 4.14 (smaps_rollup)")
def test_pss_counts_a_shared_page_once_where_rss_counts_it_per_process():
    import mmap
    import time

    block = mmap.mmap(-1, 64 << 20)  # 64 MB shared with the child after fork
    block.write(b"x" * (64 << 20))
    parent_read, child_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child touches nothing new: it only shares the parent's pages
        os.write(child_write, b"1")
        time.sleep(30)  # killed by the parent once it has measured
        os._exit(0)
    try:
        os.read(parent_read, 1)
        rss = [bench._status_kb(p, b"VmRSS:") for p in (os.getpid(), pid)]
        pss = [bench._pss_kb(p) for p in (os.getpid(), pid)]
        assert all(v and v > 0 for v in rss + pss)
        # The 64 MB counts in both RSS values, once in the two PSS values together.
        assert sum(rss) - sum(pss) > 0.8 * (64 << 10)
        assert all(p <= r for p, r in zip(pss, rss))
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        block.close()


def test_module_to_touch_is_shared_but_not_universal():
    counts = {"spaces_code/__init__.py": 40, "spaces_code/runtime.py": 38, "spaces_code/masks.py": 10,
              "spaces_code/rope.py": 3}
    assert bench.pick_module(counts, 40) == "spaces_code/masks.py"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_reader_server_counts_each_request_and_tells_page_code_from_the_rest(tmp_path):
    """The reader scenario's server: every request's bytes are its headers plus the file's exact size;
    the article's HTML, scripts and stylesheets are told apart from the search index, fonts, images."""
    import http.server
    import threading
    import urllib.request
    from functools import partial

    (tmp_path / "post").mkdir()
    files = {"post/index.html": b"<html>" + b"x" * 70_001 + b"</html>", "app.min.js": b"let a = 1;\n" * 999,
             "main.css": b"p{}" * 4_321, "search/search_index.json": b"{}"}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    traffic = bench._Traffic()
    handler = type("Handler", (bench._CountingHandler,), {"traffic": traffic})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        for path in ("post/", "app.min.js", "main.css", "search/search_index.json"):
            with urllib.request.urlopen(base + path) as response:
                body = response.read()
                assert body == files["post/index.html" if path == "post/" else path]
        traffic.wait_idle(quiet=0.1)
    finally:
        server.shutdown()
        server.server_close()
    served = dict(traffic.requests)
    assert set(served) == {"/post/", "/app.min.js", "/main.css", "/search/search_index.json"}
    for path, sent in served.items():
        size = len(files["post/index.html" if path == "/post/" else path.lstrip("/")])
        # the status line and headers come on top of the body: a few hundred bytes, never less
        assert size + 50 < sent < size + 1_000, (path, sent, size)
    assert [p for p in sorted(served) if bench.is_page_code(p)] == ["/app.min.js", "/main.css", "/post/"]
    assert bench.is_page_code("/post/index.html") and not bench.is_page_code("/assets/fonts/a.woff2")
