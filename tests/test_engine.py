"""Builds of small temporary projects through the ``spaces`` plugin, independent of the 40 real posts.

Each project is a tmp dir holding a tiny mkdocs.yml that lists the plugin, one post, a few snippets
and a tiny ``spaces_code`` package. Builds run as subprocesses exactly as a user runs them:
``spaces build ...`` from the project root. Every test here builds a site: all are marked ``slow``;
the engine's fast unit tests are in tests/test_spaces_build_*.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spaces_build.cache import Cache

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ENGINE_FILES = ["docs/stylesheets/snippets.css"]
SPACES_PLUGIN = """\
  - spaces:
      validation: false   # a test project, not the archive: no posts schema
"""

MKDOCS_YML = """\
site_name: Engine test
site_url: https://example.test/
theme:
  name: material
  language: zh
plugins:
  - mkdocs-jupyter:
      include: ["*.ipynb"]
      ignore: ["*.md", "*.py"]
      execute: false
      include_source: true
      cache_dir: .cache/mkdocs-jupyter
""" + SPACES_PLUGIN + """\
extra_css:
  - stylesheets/snippets.css
watch:
  - snippets
  - spaces_code
markdown_extensions:
  - admonition
  - pymdownx.highlight
  - pymdownx.superfences
  - pymdownx.snippets:
      check_paths: true
nav:
  - Home: index.md
  - Demo: posts/demo.md
  - Code: code/index.md
  - Runs: executions.md
"""

# Without mkdocs-jupyter (its import alone costs seconds): for the tests that need no notebook pages.
# The plugin then ships each notebook as a plain download.
LIGHT_YML = MKDOCS_YML.replace(MKDOCS_YML[MKDOCS_YML.index("plugins:"):MKDOCS_YML.index("extra_css:")],
                               "plugins:\n" + SPACES_PLUGIN)

POST = """\
---
title: 演示文章
slug: demo
---
# 演示

模块：[spaces_code/util.py](../code/util.md)，[spaces_code/waves.py](../code/waves.md)。

```python title="snippets/demo/hello.py"
--8<-- "snippets/demo/hello.py"
```

!!! note "放在提示框里"
    ```python
    --8<-- "snippets/demo/plot.py"
    ```

```python
--8<-- "snippets/demo/timing.py"
```

```python
--8<-- "snippets/demo/big.py"
```

结束。
"""

FILES = {
    "docs/index.md": "# Home\n",
    "docs/posts/demo.md": POST,
    "spaces_code/__init__.py": '"""Tiny library of the test project."""\n',
    "spaces_code/util.py": '"""Arithmetic."""\n\n\ndef double(x):\n    return 2 * x\n',
    "spaces_code/waves.py": textwrap.dedent('''\
        """Waves."""
        import numpy as np


        def noisy_sine(n):
            x = np.linspace(0.0, 2 * np.pi, n)
            return x, np.sin(x) + 0.1 * np.random.rand(n)
        '''),
    "spaces_code/unused.py": '"""Imported by nobody."""\n\nVALUE = 1\n',
    "snippets/demo/hello.py": textwrap.dedent('''\
        from spaces_code.util import double

        print("double(21) =", double(21))
        print("<script>alert('x')</script> & <b>bold</b>")
        '''),
    "snippets/demo/plot.py": textwrap.dedent('''\
        import matplotlib.pyplot as plt

        from spaces_code.waves import noisy_sine

        x, y = noisy_sine(40)
        fig, ax = plt.subplots(figsize=(4, 2.5))
        ax.plot(x, y)
        ax.set_title("noisy sine")
        print("mean", round(float(y.mean()), 6))
        '''),
    "snippets/demo/timing.py": textwrap.dedent('''\
        # spaces: timing-dependent
        import time

        t0 = time.perf_counter()
        sum(range(10000))
        print(f"took {time.perf_counter() - t0:.6f} s")
        '''),
    "snippets/demo/big.py": 'for i in range(200_000):\n    print(f"line {i:07d}")\n',
}


def make_project(path: Path, files: dict[str, str] = FILES, mkdocs_yml: str = MKDOCS_YML) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for rel in ENGINE_FILES:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, path / rel)
    (path / "mkdocs.yml").write_text(mkdocs_yml, encoding="utf-8")
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    return path


SPACES = [sys.executable, "-m", "spaces_build.cli"]


def build(project: Path, *args: str, timeout: float = 600, preload: bool = False) -> subprocess.CompletedProcess:
    """``spaces build --jobs 2 ARGS`` in ``project``. ``--no-preload`` unless ``preload``: these snippets
    need no torch, and a fork server pre-imports it for seconds in every build; the fork server's
    own path is taken by the timeout and kill tests here, by ``spaces serve`` and by every build of
    the mini archive and the real site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    flags = [] if preload else ["--no-preload"]
    return subprocess.run([*SPACES, "build", "--jobs", "2", *flags, *args], cwd=project,
                          env=env, capture_output=True, text=True, timeout=timeout)


def cached(project: Path) -> set[str]:
    """The snippets that have an entry in the project's cache."""
    return {entry.snippet for entry in Cache(project).all_entries()}


def executions(project: Path, site: str = "site") -> dict[str, dict]:
    rows = json.loads((project / site / "executions.json").read_text(encoding="utf-8"))
    return {row["snippet"]: row for row in rows}


def executed(project: Path) -> set[str]:
    return {name for name, row in executions(project).items() if not row["cached"]}


def output_div(page_html: str, snippet: str) -> str:
    start = page_html.index(f'data-snippet="{snippet}"')
    start = page_html.rindex("<div", 0, start)
    return page_html[start:page_html.index("</div>", start) + len("</div>")]


def page(project: Path, rel: str = "posts/demo/index.html") -> str:
    return (project / "site" / rel).read_text(encoding="utf-8")


def article(project: Path, rel: str) -> str:
    """The page's content only (not the navigation, which links every page)."""
    text = page(project, rel)
    return text[text.index("<article"):text.index("</article>")]


@pytest.fixture(scope="module")
def warm_project(tmp_path_factory):
    """A project after a cold build (``cold``) and an unchanged rebuild (``warm``)."""
    project = make_project(tmp_path_factory.mktemp("engine") / "project")
    cold = build(project)
    assert cold.returncode == 0, cold.stderr
    cold_rows = executions(project)
    warm = build(project)
    assert warm.returncode == 0, warm.stderr
    return project, cold_rows, warm


def copy_project(src: Path, dest: Path, mkdocs_yml: str = LIGHT_YML) -> Path:
    """A copy of a built project (its cache included), by default with the light configuration."""
    shutil.copytree(src, dest, symlinks=True)
    (dest / "mkdocs.yml").write_text(mkdocs_yml, encoding="utf-8")
    return dest


# --------------------------------------------------------------------------------------------------


def test_cold_build_runs_every_snippet_and_warm_build_none(warm_project):
    project, cold_rows, warm = warm_project
    snippets = {f"snippets/demo/{n}.py" for n in ("hello", "plot", "timing", "big")}
    assert set(cold_rows) == snippets
    assert all(row["status"] == "ok" and not row["cached"] for row in cold_rows.values())
    assert executed(project) == set()  # the unchanged rebuild executed nothing
    assert "4 found, 4 cached, 0 to run" in warm.stderr
    row = executions(project)["snippets/demo/plot.py"]
    for key in ("snippet", "article", "status", "cached", "seconds", "peak_memory_mb", "device",
                "executed_at", "versions", "timing_dependent"):
        assert key in row
    assert row["article"] == "demo" and row["device"] == "cpu" and row["peak_memory_mb"] > 0
    assert row["executed_at"] == cold_rows["snippets/demo/plot.py"]["executed_at"]
    assert set(row["versions"]) >= {"python", "torch", "numpy"}


def test_plain_mkdocs_build_uses_the_same_cache(warm_project, tmp_path):
    project = copy_project(warm_project[0], tmp_path / "copy")  # the cache is relocatable too
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert executed(project) == set()
    assert "double(21) = 42" in page(project)


def test_outputs_are_embedded_after_their_blocks(warm_project):
    project = warm_project[0]
    text = page(project)
    div = output_div(text, "snippets/demo/hello.py")
    assert 'class="snippet-output"' in div
    assert "double(21) = 42" in div
    assert "设备 cpu" in div and "Python 3." in div and "PyTorch" in div and "NumPy" in div
    # Right after the highlighted code of its own block, in page order.
    assert text.index("double</span>") < text.index('data-snippet="snippets/demo/hello.py"')
    assert text.index('data-snippet="snippets/demo/hello.py"') < text.index('data-snippet="snippets/demo/plot.py"')
    # The source Markdown was not touched.
    assert (project / "docs/posts/demo.md").read_text(encoding="utf-8") == POST


def test_output_is_escaped(warm_project):
    div = output_div(page(warm_project[0]), "snippets/demo/hello.py")
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in div
    assert "<script" not in div and "<b>" not in div


def test_figure_is_a_deterministic_svg_file(warm_project):
    project = warm_project[0]
    div = output_div(page(project), "snippets/demo/plot.py")
    src = re.search(r'<img src="([^"]+)"', div).group(1)
    assert src == "../../snippet-outputs/demo/plot-1.svg"
    svg = (project / "site/snippet-outputs/demo/plot-1.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<dc:date>" not in svg
    assert "mean " in div
    assert executions(project)["snippets/demo/plot.py"]["figures"] == 1


def test_timing_dependent_snippet_is_marked(warm_project):
    project = warm_project[0]
    div = output_div(page(project), "snippets/demo/timing.py")
    assert 'data-timing-dependent="true"' in div and "每次构建都会不同" in div
    rows = executions(project)
    assert rows["snippets/demo/timing.py"]["timing_dependent"] is True
    assert rows["snippets/demo/hello.py"]["timing_dependent"] is False


def test_huge_output_is_truncated_with_a_note(warm_project):
    project = warm_project[0]
    div = output_div(page(project), "snippets/demo/big.py")
    assert "输出过长" in div and "已截断" in div
    assert "line 0000000" in div and "line 0199999" in div  # head and tail kept
    assert "line 0100000" not in div
    assert len(div) < 200_000
    row = executions(project)["snippets/demo/big.py"]
    assert row["truncated"] and row["output_bytes"] == 200_000 * 13


def test_code_pages_link_back_to_the_articles(warm_project):
    project = warm_project[0]
    util = article(project, "code/util/index.html")
    assert "spaces_code/util.py" in util and "double" in util
    assert 'href="../../posts/demo/"' in util  # hello.py imports it
    unused = article(project, "code/unused/index.html")
    assert 'href="../../posts/demo/"' not in unused
    index = article(project, "code/index.html")
    for name in ("util", "waves", "unused"):
        assert f'href="{name}/"' in index
    # The post's link to the module page resolved (the strict build would have failed otherwise).
    assert 'href="../../code/util/"' in page(project)


def test_notebook_has_cells_and_cached_outputs(warm_project):
    import nbformat

    project = warm_project[0]
    path = project / "site/notebooks/demo/demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code][0] == FILES["snippets/demo/hello.py"].rstrip("\n")
    assert "double(21) = 42" in code[0].outputs[0]["text"]
    assert any("image/svg+xml" in o.get("data", {}) for c in code for o in c.outputs)
    rendered = page(project, "notebooks/demo/index.html")
    assert "double(21) = 42" in rendered
    # mkdocs-jupyter's 575 kB stylesheet is shared, not inlined; no request leaves the site.
    css = re.search(r'<link rel="stylesheet" href="\.\./\.\./(assets/stylesheets/jupyter-\w+\.css)">', rendered)
    assert css and (project / "site" / css.group(1)).stat().st_size > 100_000
    assert len(rendered) < 300_000
    assert "cdnjs" not in rendered and '<script src="">' not in rendered
    # The figure links to the file the article page shows, instead of a base64 copy in the page.
    assert "data:image/svg+xml" not in rendered
    figure = re.search(r'<img[^>]* src="\.\./\.\./(snippet-outputs/[^"]+\.svg)"', rendered)
    assert figure and figure.group(1) in page(project) and (project / "site" / figure.group(1)).is_file()
    links = re.search(r'<p class="snippet-notebook">.*?</p>', page(project)).group(0)
    assert 'href="../../notebooks/demo/"' in links and 'href="../../notebooks/demo/demo.ipynb"' in links


def test_executions_page_shows_the_table_with_totals(warm_project):
    project = warm_project[0]
    text = article(project, "executions/index.html")
    assert text.count('<code title="snippets/demo/') == 4
    assert "<td>4 段</td>" in text and "本次构建运行了 0 段" in text and "计时</span>" in text
    assert 'href="../posts/demo/"' in text


def test_changing_a_module_reruns_exactly_its_users(warm_project, tmp_path):
    project = copy_project(warm_project[0], tmp_path / "copy")
    with open(project / "spaces_code/util.py", "a", encoding="utf-8") as fh:
        fh.write("\n# a comment changes the source\n")
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    assert executed(project) == {"snippets/demo/hello.py"}

    (project / "spaces_code/unused.py").write_text('"""Still imported by nobody."""\n', encoding="utf-8")
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    assert executed(project) == set()

    snippet = project / "snippets/demo/plot.py"
    snippet.write_text(snippet.read_text(encoding="utf-8") + 'print("edited")\n', encoding="utf-8")
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    assert executed(project) == {"snippets/demo/plot.py"}
    assert "edited" in output_div(page(project), "snippets/demo/plot.py")


def test_files_read_by_a_snippet_are_dependencies(tmp_path):
    files = {
        "docs/index.md": "# Home\n",
        "docs/posts/demo.md": '---\ntitle: t\n---\n# t\n\n```python\n--8<-- "snippets/demo/read.py"\n```\n',
        "spaces_code/__init__.py": "",
        "spaces_code/data.py": textwrap.dedent('''\
            from pathlib import Path
            DATA = Path(__file__).resolve().parent.parent / "data"

            def words():
                return [w for p in sorted(DATA.glob("*.txt")) for w in p.read_text().split()]
            '''),
        "snippets/demo/read.py": "from spaces_code.data import words\nprint(len(words()))\n",
        "data/a.txt": "one two three\n",
    }
    project = make_project(tmp_path / "p", files, LIGHT_YML)
    assert build(project).returncode == 0
    assert "<code>3</code>" in page(project)
    # Without mkdocs-jupyter the notebook is still there, as a plain download.
    assert 'href="../../notebooks/demo.ipynb" download' in page(project)
    assert json.loads((project / "site/notebooks/demo.ipynb").read_text(encoding="utf-8"))["nbformat"] == 4
    (project / "data/b.txt").write_text("four\n")  # a new file in a folder the snippet listed
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    assert executed(project) == {"snippets/demo/read.py"} and "<code>4</code>" in page(project)
    (project / "data/a.txt").write_text("one\n")  # a changed file the snippet read
    assert build(project).returncode == 0
    assert executed(project) == {"snippets/demo/read.py"} and "<code>2</code>" in page(project)
    (project / "notes.txt").write_text("unrelated\n")  # nothing the snippet looked at
    assert build(project).returncode == 0
    assert executed(project) == set()


FAILING = {
    "docs/index.md": "# Home\n",
    "docs/posts/demo.md": textwrap.dedent('''\
        ---
        title: 会失败的文章
        slug: demo
        ---
        # 失败

        ```python
        --8<-- "snippets/demo/ok.py"
        ```

        ```python
        --8<-- "snippets/demo/bad.py"
        ```
        '''),
    "spaces_code/__init__.py": "",
    "snippets/demo/ok.py": 'print("fine")\n',
    "snippets/demo/bad.py": textwrap.dedent('''\
        print("before the error")


        def divide(a, b):
            return a / b


        divide(1, 0)
        '''),
}


def test_failing_snippet_fails_the_build_and_names_it(tmp_path):
    project = make_project(tmp_path / "p", FAILING, LIGHT_YML)
    proc = build(project)
    assert proc.returncode == 1
    err = proc.stderr
    assert "snippets/demo/bad.py:5: ZeroDivisionError: division by zero" in err
    assert "article: demo (docs/posts/demo.md)" in err
    assert 'File "snippets/demo/bad.py", line 8' in err  # the traceback, relative to the repository
    assert "runner.py" not in err and "runpy" not in err
    assert "snippets/demo/bad.py" not in cached(project)  # failures are never cached
    assert not (project / "site/posts/demo/index.html").exists()  # nothing published


def test_failure_never_publishes_the_stale_output(tmp_path):
    files = dict(FAILING, **{"snippets/demo/bad.py": 'print("old good output")\n'})
    project = make_project(tmp_path / "p", files, LIGHT_YML)
    assert build(project).returncode == 0
    assert "old good output" in page(project)
    (project / "snippets/demo/bad.py").write_text('print("new")\nraise RuntimeError("now broken")\n')
    proc = build(project)
    assert proc.returncode == 1 and "snippets/demo/bad.py:2: RuntimeError: now broken" in proc.stderr
    site = project / "site"
    assert not any("old good output" in p.read_text(errors="replace") for p in site.rglob("*.html"))
    (project / "snippets/demo/bad.py").write_text('print("fixed")\n')
    assert build(project).returncode == 0 and "fixed" in page(project)


def test_keep_going_reports_every_failure(tmp_path):
    files = dict(FAILING, **{"snippets/demo/ok.py": 'raise KeyError("first")\n'})
    project = make_project(tmp_path / "p", files, LIGHT_YML)
    proc = build(project, "--jobs", "1")
    assert proc.returncode == 1 and "1 snippet(s) failed" in proc.stderr
    proc = build(project, "--keep-going")
    assert proc.returncode == 1 and "2 snippet(s) failed" in proc.stderr
    assert "snippets/demo/ok.py:1: KeyError: 'first'" in proc.stderr
    assert "snippets/demo/bad.py:5: ZeroDivisionError" in proc.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _runners_of(project: Path) -> list[int]:
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "spaces_build/runner.py" in cmdline and str(project) in cmdline and _alive(int(proc_dir.name)):
            found.append(int(proc_dir.name))
    return found


def test_timeout_kills_the_process_group(tmp_path):
    files = dict(FAILING, **{"snippets/demo/bad.py": textwrap.dedent('''\
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        print("pids", os.getpid(), child.pid, flush=True)
        time.sleep(300)
        ''')})
    project = make_project(tmp_path / "p", files, LIGHT_YML)
    proc = build(project, "--timeout", "2", timeout=120, preload=True)  # a forked snippet's group
    assert proc.returncode == 1
    assert "snippets/demo/bad.py: timed out (killed after 2 s)" in proc.stderr
    pids = [int(p) for p in re.search(r"pids (\d+) (\d+)", proc.stderr).groups()]
    assert not any(_alive(pid) for pid in pids)


def test_two_clean_builds_give_identical_outputs(warm_project, tmp_path):
    first = warm_project[0]
    second = make_project(tmp_path / "second")
    assert build(second).returncode == 0

    def outputs(project: Path) -> dict[str, bytes]:
        found = {p.relative_to(project / "site").as_posix(): p.read_bytes()
                 for p in (project / "site/snippet-outputs").rglob("*") if p.is_file()}
        text = page(project)
        for name in ("hello", "plot", "big"):
            found[name] = output_div(text, f"snippets/demo/{name}.py").encode()
        nb = json.loads((project / "site/notebooks/demo/demo.ipynb").read_text(encoding="utf-8"))
        nb["cells"] = [c for c in nb["cells"] if not c["metadata"].get("spaces", {}).get("timing_dependent")]
        found["notebook-without-timing"] = json.dumps(nb).encode()
        return found

    a, b = outputs(first), outputs(second)
    assert a.keys() == b.keys() and "snippet-outputs/demo/plot-1.svg" in a
    assert a == b
    assert page(first, "code/util/index.html") == page(second, "code/util/index.html")


def test_build_killed_midway_leaves_a_usable_cache(tmp_path):
    files = dict(FAILING, **{
        "snippets/demo/ok.py": 'print("quick")\n',
        "snippets/demo/bad.py": 'import os, time\nprint("pid", os.getpid(), flush=True)\ntime.sleep(4)\nprint("slow done")\n',
    })
    project = make_project(tmp_path / "p", files, LIGHT_YML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    proc = subprocess.Popen([*SPACES, "build", "--jobs", "2"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while "snippets/demo/ok.py" not in cached(project) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "snippets/demo/ok.py" in cached(project)
    proc.kill()  # kill -9 while bad.py sleeps
    proc.wait()
    time.sleep(1)
    assert not _runners_of(project)  # the snippet died with the build (parent-death signal)
    # A torn leftover of an interrupted write must not matter either.
    (project / ".cache/snippets/.0123abcd.json.123.tmp").write_text('{"schema": 2, "snip')
    done = build(project, preload=True)
    assert done.returncode == 0, done.stderr
    assert executed(project) == {"snippets/demo/bad.py"}
    assert "slow done" in page(project) and "quick" in page(project)


def test_torn_notebook_render_cache_is_rebuilt(warm_project, tmp_path):
    project = copy_project(warm_project[0], tmp_path / "copy", MKDOCS_YML)
    entries = list((project / ".cache/mkdocs-jupyter").glob("*.json"))
    assert entries
    for path in entries:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    assert page(project, "notebooks/demo/index.html") == page(warm_project[0], "notebooks/demo/index.html")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8")
    except OSError:
        return ""


def _wait_for(url: str, needle: str, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = _get(url)
        if needle in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} never appeared at {url}")


def test_serve_reruns_what_an_edit_affects(warm_project, tmp_path):
    project = copy_project(warm_project[0], tmp_path / "copy")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    server = subprocess.Popen([*SPACES, "serve", "--dev-addr", f"127.0.0.1:{port}"],
                              cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}/posts/demo/"
    try:
        _wait_for(url, "double(21) = 42")
        (project / "spaces_code/util.py").write_text("def double(x):\n    return x + x + 1\n")
        _wait_for(url, "double(21) = 43")  # the module's user re-ran, on the served page
        (project / "snippets/demo/hello.py").write_text('raise ValueError("shown, not fatal")\n')
        text = _wait_for(url, "snippet-failed")  # serving goes on, the failure is on its page
        assert "ValueError: shown, not fatal" in text
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_fork_server_preloads_torch_without_cuda_and_without_repository_modules(tmp_path):
    """The fork server's real preload list (torch, NumPy, matplotlib: seconds; the fast tests of
    tests/test_forkserver.py use a light one)."""
    from spaces_build import forkserver

    if not forkserver.available():
        pytest.skip("the fork server needs Linux")
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        root = {str(REPO) + os.sep!r}
        print(all(name in sys.modules for name in ("torch", "numpy", "matplotlib.pyplot")))
        print(sys.modules["torch"].cuda.is_initialized())
        print(sorted(name for name, m in list(sys.modules.items())
                     if (getattr(m, "__file__", None) or "").startswith(root)
                     and ".venv" not in m.__file__))
    """))
    with forkserver.ForkServer(dict(os.environ, PYTHONHASHSEED="0", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")) as srv:
        srv.wait_ready()
        assert srv.preloaded == list(forkserver.PRELOAD) and srv.preload_errors == {}
        done = srv.run([str(script)], cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout
    assert done.stdout.decode().split("\n")[:3] == ["True", "False", "[]"]
