"""Fast unit tests of the build's core (spaces_build): parsing, cache, executor, engine, embedding.

No MkDocs build and no torch in the snippets: each test runs in well under a second, the whole file in
seconds. Snippets here are plain Python; the build's processes are real (one per snippet), started as
plain interpreters (``preload=False``): the fork server, which pre-imports torch for seconds, is tested
in tests/test_forkserver.py and by every build test (tests/test_engine.py and the mini archive's).
"""
from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import markdown
import pytest

from spaces_build import parsing
from spaces_build.cache import Cache, CacheEntry, Hasher, cache_key
from spaces_build.config import EngineError, Options
from spaces_build.embed import EmbedOutputsExtension, MissingOutput
from spaces_build.engine import environment, run_build
from spaces_build.capture import decode as _decode
from spaces_build.executor import run_process
from spaces_build.notebooks import notebook
from spaces_build.render import render_output

pytestmark = pytest.mark.engine


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


POST = '''\
---
title: 演示
slug: demo
tags:
  - a
  - b
---
# 演示

```python
--8<-- "snippets/demo/hello.py"
```

!!! note "in an admonition"
    ~~~
    --8<-- 'snippets/demo/plain.py'
    ~~~
'''

PROJECT = {
    "docs/posts/demo.md": POST,
    "spaces_code/__init__.py": "",
    "spaces_code/util.py": "def double(x):\n    return 2 * x\n",
    "spaces_code/other.py": "VALUE = 1\n",
    "snippets/demo/hello.py": 'from spaces_code.util import double\nprint("double(21) =", double(21))\nprint("<b>&</b>")\n',
    "snippets/demo/plain.py": 'print("plain")\n',
}


def pages(root: Path) -> dict[str, Path]:
    return {"posts/demo.md": root / "docs/posts/demo.md"}


def options(**kw) -> Options:
    return Options(jobs=2, device="cpu", timeout=60, preload=False, **kw)


# --------------------------------------------------------------------------------------------------
# parsing


def test_find_includes_takes_whole_snippet_blocks_only():
    md = textwrap.dedent('''\
        ```python
        --8<-- "snippets/a/one.py"
        ```

        ````markdown
        ```python
        --8<-- "snippets/a/inside_example.py"
        ```
        ````

        ```python
        --8<-- "snippets/a/two.py"
        print("extra line")
        ```

        ```python
        --8<-- "snippets/a/lines.py:1:3"
        ```

            ~~~
            --8<-- 'snippets/a/indented.py'
            ~~~
        ''')
    assert [i.snippet for i in parsing.find_includes(md)] == ["snippets/a/one.py", "snippets/a/indented.py"]
    assert parsing.is_timing_dependent("#!/usr/bin/env python\n# spaces: timing-dependent\nimport time\n")
    assert not parsing.is_timing_dependent("x = 1\n" * 20 + "# spaces: timing-dependent\n")


def test_front_matter_lines_come_from_the_yaml_marks():
    fm = parsing.front_matter(POST)
    assert fm.present and fm.data["slug"] == "demo" and fm.body_line == 8
    assert fm.line_of("slug") == 3 and fm.line_of("tags") == 4
    assert fm.line_of("tags", "b") == 6 and fm.line_of("tags", "zzz") == 4 and fm.line_of("missing") == 1
    flow = parsing.front_matter("---\ntitle: x\ntags: [a, b]\n---\nbody\n")
    assert flow.line_of("tags", "b") == 3
    bad = parsing.front_matter("---\ntitle: a: b\n---\n")
    assert bad.error is not None and bad.error_line == 2 and bad.data == {}
    assert not parsing.front_matter("# no front matter\n").present
    assert not parsing.front_matter("---\n- a\n---\n").mapping
    assert parsing.split("---\nx: 1\n...\nbody\n") == ({"x": 1}, "body\n")


def test_outside_code_and_formulas():
    lines = ["a $x$", "```", "$not$", "```", "b"]
    assert [n for n, _ in parsing.outside_code(lines)] == [1, 2, 4, 5]
    assert parsing.formulas("a $x$ `$y$` and $$z$$\n```\n$w$\n```\n") == ["$x$", "$$z$$"]


# --------------------------------------------------------------------------------------------------
# cache


def _entry(**kw) -> CacheEntry:
    values = dict(snippet="snippets/demo/x.py", article="demo", snippet_sha256="s", deps=[], output="out",
                  output_tail="", output_bytes=3, truncated=False, seconds=1.5, peak_memory_mb=10.0,
                  device="cpu", device_name=None, versions={"python": "3"}, executed_at="2026-01-01T00:00:00+00:00",
                  timing_dependent=False)
    values.update(kw)
    return CacheEntry(**values)


def test_cache_entry_round_trip_and_schema(tmp_path):
    entry = _entry()
    assert CacheEntry.from_json(entry.to_json()) == entry
    assert CacheEntry.from_json(b'{"schema": 1, "snippet": "x"}') is None
    assert CacheEntry.from_json(b"{torn") is None
    cache = Cache(tmp_path)
    stored = cache.store("k" * 64, entry, [b"<svg/>"])
    assert cache.load("k" * 64).figures == stored.figures and cache.figure_path(stored.figures[0]).read_bytes() == b"<svg/>"
    assert [e.snippet for e in cache.all_entries()] == ["snippets/demo/x.py"]
    (cache.entries / "old-article").mkdir()  # the older layout: a folder of entries per article
    (cache.entries / "old-article" / "x.json").write_text("{}")
    cache.prune(keep=set())
    assert cache.all_entries() == [] and list(cache.entries.iterdir()) == []


def test_freshness_follows_the_recorded_dependencies(tmp_path):
    write(tmp_path, {"spaces_code/util.py": "A = 1\n"})
    env = {"python": "3"}
    deps = [["file", "spaces_code/util.py", Hasher(tmp_path)("file", "spaces_code/util.py")]]
    entry = _entry(deps=deps, key=cache_key("s", deps, env))
    cache = Cache(tmp_path)
    assert cache.is_fresh(entry, "s", env, Hasher(tmp_path))
    assert not cache.is_fresh(entry, "other source", env, Hasher(tmp_path))
    assert not cache.is_fresh(entry, "s", {"python": "4"}, Hasher(tmp_path))
    (tmp_path / "spaces_code/util.py").write_text("A = 2\n")
    assert not cache.is_fresh(entry, "s", env, Hasher(tmp_path))


# --------------------------------------------------------------------------------------------------
# executor and engine


def test_output_reads_as_on_a_terminal():
    assert _decode(b"\x1b[31mred\x1b[0m\r\n10%\r50%\r100%\ndone", []) == "red\n100%\ndone"
    assert _decode(b"/tmp/x/cwd/file", [("/tmp/x/cwd/", "")]) == "file"


def test_run_process_kills_the_whole_group_on_timeout(tmp_path):
    script = "import subprocess, sys, time\nc = subprocess.Popen(['sleep', '60'])\nprint(c.pid, flush=True)\ntime.sleep(60)\n"
    result = run_process([os.sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ), timeout=1.0)
    assert result.timed_out and result.wall < 30
    child = int(result.head.split()[0])
    time.sleep(0.2)
    try:
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    assert state in ("gone", "Z", "X")


def test_cold_then_warm_then_exactly_the_users_of_a_changed_module(tmp_path):
    root = write(tmp_path, PROJECT)
    cold = run_build(root, pages(root), options())
    assert cold.executed == 2 and all(r.ok for r in cold.records.values())
    hello = cold.records["snippets/demo/hello.py"]
    assert "double(21) = 42" in hello.entry.output and hello.entry.seconds >= 0
    assert ["file", "spaces_code/util.py"] in [d[:2] for d in hello.entry.deps]
    assert not any(d[1].startswith("scripts/") for d in hello.entry.deps)  # the build is no dependency
    assert run_build(root, pages(root), options()).executed == 0
    (root / "spaces_code/util.py").write_text("def double(x):\n    return x + x + 1\n")
    again = run_build(root, pages(root), options())
    assert {r.snippet.rel for r in again.records.values() if not r.cached} == {"snippets/demo/hello.py"}
    assert "double(21) = 43" in again.records["snippets/demo/hello.py"].entry.output
    (root / "spaces_code/other.py").write_text("VALUE = 2\n")  # imported by nobody
    assert run_build(root, pages(root), options()).executed == 0


def test_a_failure_is_named_and_never_cached(tmp_path):
    root = write(tmp_path, dict(PROJECT, **{"snippets/demo/plain.py": 'print("before")\n\n1 / 0\n'}))
    with pytest.raises(EngineError) as err:
        run_build(root, pages(root), options(keep_going=True))
    assert "snippets/demo/plain.py:3: ZeroDivisionError: division by zero" in str(err.value)
    assert "article: demo (docs/posts/demo.md)" in str(err.value)
    assert {e.snippet for e in Cache(root).all_entries()} == {"snippets/demo/hello.py"}
    served = run_build(root, pages(root), options(serve=True))  # serve: reported, not raised
    assert served.records["snippets/demo/plain.py"].status == "failed"


def test_execution_off_refuses_stale_snippets(tmp_path):
    root = write(tmp_path, PROJECT)
    with pytest.raises(EngineError, match="not in the cache and execution is off"):
        run_build(root, pages(root), options(execute=False))
    run_build(root, pages(root), options())
    assert run_build(root, pages(root), options(execute=False)).executed == 0


def test_shards_split_the_stale_snippets_and_merge_by_copying(tmp_path):
    import shutil

    roots = [write(tmp_path / f"s{k}", PROJECT) for k in (1, 2)]
    done = [run_build(r, pages(r), options(shard=(k, 2))) for k, r in zip((1, 2), roots)]
    assert sorted(d.executed for d in done) == [1, 1]
    for path in (roots[1] / ".cache/snippets").glob("*.json"):
        shutil.copy2(path, roots[0] / ".cache/snippets" / path.name)
    assert run_build(roots[0], pages(roots[0]), options(execute=False)).executed == 0


def test_options_are_checked():
    with pytest.raises(EngineError):
        Options(device="tpu")
    with pytest.raises(EngineError):
        Options(timeout=0)
    assert Options(jobs=0).workers >= 1


# --------------------------------------------------------------------------------------------------
# rendering and embedding


def test_embed_extension_works_with_plain_markdown(tmp_path):
    root = write(tmp_path, PROJECT)
    run_build(root, pages(root), options())
    ext = EmbedOutputsExtension(root=str(root))
    html = markdown.markdown(parsing.split(POST)[1], extensions=["admonition", "pymdownx.superfences", ext])
    assert html.count('class="snippet-output"') == 2
    out = html.index('data-snippet="snippets/demo/hello.py"')
    assert html.index("snippets/demo/hello.py") < out  # after its own block (the include line shows unprocessed)
    assert "double(21) = 42" in html and "&lt;b&gt;&amp;&lt;/b&gt;" in html and "<b>&" not in html
    note = html[html.index('class="admonition note"'):]
    assert note.index("plain.py") < note.index('data-snippet="snippets/demo/plain.py"') < note.index("</div>\n</div>")
    (root / "snippets/demo/plain.py").write_text('print("changed")\n')
    with pytest.raises(MissingOutput, match="snippets/demo/plain.py"):
        markdown.markdown(parsing.split(POST)[1], extensions=[EmbedOutputsExtension(root=str(root))])


def test_notebook_is_valid_nbformat_with_recorded_outputs(tmp_path):
    import nbformat

    root = write(tmp_path, PROJECT)
    state = run_build(root, pages(root), options())
    records = state.articles()["demo"]
    text = notebook("demo", state.posts["posts/demo.md"], records, Cache(root), "https://x.test/posts/demo/")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.metadata["spaces"]["snippet"] for c in code] == ["snippets/demo/hello.py", "snippets/demo/plain.py"]
    assert "double(21) = 42" in code[0].outputs[0]["text"]
    assert text == notebook("demo", state.posts["posts/demo.md"], records, Cache(root), "https://x.test/posts/demo/")
    assert json.loads(text)["cells"][0]["id"] == "demo-0"


def test_notebook_fingerprint_follows_the_outputs_not_only_the_cache_key(tmp_path):
    """A snippet run again under the same cache key (a timing snippet whose entry was pruned, or came
    from another shard) shows new output: its notebook must be written again, as its page is."""
    import dataclasses

    from spaces_build.notebooks import notebook_fingerprint

    root = write(tmp_path, PROJECT)
    state = run_build(root, pages(root), options())
    post, records = state.posts["posts/demo.md"], state.articles()["demo"]
    before = notebook_fingerprint("demo", post, records, None)
    assert before == notebook_fingerprint("demo", post, list(records), None)
    first = records[0]
    for change in ({"output": first.entry.output + "again\n"}, {"figures": ["0" * 64]}):
        rerun = dataclasses.replace(first, entry=dataclasses.replace(first.entry, **change))
        assert rerun.entry.key == first.entry.key
        assert notebook_fingerprint("demo", post, [rerun, *records[1:]], None) != before, change


def test_output_html_is_escaped_and_failures_shown(tmp_path):
    root = write(tmp_path, PROJECT)
    state = run_build(root, pages(root), options())
    html = render_output(state.records["snippets/demo/hello.py"], [])
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in html and "设备 cpu" in html
    assert environment("cpu")["device"] == "cpu"


# --------------------------------------------------------------------------------------------------
# the fork server started before MkDocs loads (engine.prestart)


def _opts(**kw) -> Options:
    return Options(**dict(dict(jobs=2, device="cpu", timeout=60), **kw))


def test_prestart_only_when_something_will_run_and_the_build_takes_that_server(tmp_path, monkeypatch):
    import functools

    from spaces_build import engine, executor, forkserver

    if not forkserver.available():
        pytest.skip("the fork server needs Linux")
    # a light preload: the real one (torch) is tested in tests/test_engine.py
    monkeypatch.setattr(executor, "ForkServer", functools.partial(forkserver.ForkServer, preload=("json",)))
    started = []
    real_start = executor.start_server
    monkeypatch.setattr(executor, "start_server", lambda env: started.append(env) or real_start(env))
    root = write(tmp_path, PROJECT)
    assert not engine.prestart(root, pages(root), _opts(preload=False))  # --no-preload: no server
    assert not executor._PRESTARTED
    assert engine.prestart(root, pages(root), _opts(preload=True))  # a cold cache: one server, now
    assert len(executor._PRESTARTED) == 1 and engine.prestart_checked(root)
    state = run_build(root, pages(root), _opts(preload=True))
    assert state.executed == 2 and not started  # the build used the prestarted server
    assert not executor._PRESTARTED and not engine.prestart_checked(root)
    assert not engine.prestart(root, pages(root), _opts(preload=True))  # warm: nothing to run, no server
    assert not executor._PRESTARTED


def test_a_prestarted_server_nobody_takes_is_stopped(tmp_path, monkeypatch):
    import functools

    from spaces_build import engine, executor, forkserver

    if not forkserver.available():
        pytest.skip("the fork server needs Linux")
    monkeypatch.setattr(executor, "ForkServer", functools.partial(forkserver.ForkServer, preload=()))
    root = write(tmp_path, PROJECT)
    assert engine.prestart(root, pages(root), _opts(preload=True))
    server = executor._PRESTARTED[0][1]
    proc = server._proc
    with pytest.raises(EngineError):  # execution off: the build fails before anything runs
        run_build(root, pages(root), _opts(preload=True, execute=False))
    assert not executor._PRESTARTED and proc.poll() is not None  # ... and the server is gone


def test_shared_notebook_templates_give_the_same_html(tmp_path):
    """jupyter.share_templates: nbconvert's templates compiled once per process, same HTML."""
    nbformat = pytest.importorskip("nbformat")
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter

    from spaces_build import jupyter

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 标题\n\n文字"),
                                         nbformat.v4.new_code_cell("print(1)", outputs=[
                                             nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    before = HTMLExporter().from_notebook_node(nb)[0]
    original = TemplateExporter.__dict__["_create_environment"]
    try:
        jupyter.share_templates()
        jupyter.share_templates()  # idempotent
        assert TemplateExporter.__dict__["_create_environment"].spaces_shared
        first = HTMLExporter().from_notebook_node(nb)[0]
        exporter = HTMLExporter()
        second = exporter.from_notebook_node(nb)[0]
        assert exporter.environment.bytecode_cache.code  # the second exporter found compiled templates
    finally:
        TemplateExporter._create_environment = original
    assert before == first == second
