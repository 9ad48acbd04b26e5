"""A contributor who follows CONTRIBUTING.md gets a new article with an executed snippet onto the site,
without reading any code. End to end on a temporary copy (``tests/mini_archive.py``):

1. run the scaffolding command exactly as CONTRIBUTING.md writes it (English section);
2. the scaffold is refused: validation and the build list every scaffold marker, and the
   scaffolded test fails;
3. fill the four files as an author would: replace each marker with real text, a real module with its
   docstring, a real snippet and a real test;
4. ``scripts/validate.py`` passes, the new test passes, ``scripts/build.py`` passes, and the article's
   page shows the snippet's output, with the module's page linking back.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mini_archive

pytestmark = pytest.mark.slow  # builds the mini archive

MARK = "SPACES-" + "SCAFFOLD"  # spelled apart: validation flags the marker in any test file


def _documented_command(contributing: str, section: str) -> list[str]:
    """The ``new_article.py`` command of a section of CONTRIBUTING.md, as a list of arguments."""
    text = contributing[contributing.index(section):]
    block = re.search(r"```bash\n(\.venv/bin/python scripts/new_article\.py.*?)\n```", text, re.S).group(1)
    args = shlex.split(block.replace("\\\n", " "))
    assert args[0] == ".venv/bin/python"
    return [sys.executable, *args[1:]]


def _run(cmd: list[str], project: Path, **kw) -> subprocess.CompletedProcess:
    env = mini_archive.clean_env()
    # A clone's .venv has the clone installed in editable mode (pip install -e .): its spaces_code.
    env["PYTHONPATH"] = str(project)
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600, **kw)


def _replace(path: Path, pattern: str, new: str, flags=re.S) -> None:
    text = path.read_text(encoding="utf-8")
    changed, n = re.subn(pattern, lambda _: new, text, count=1, flags=flags)
    assert n == 1, f"{pattern!r} not found in {path}"
    path.write_text(changed, encoding="utf-8")


@pytest.fixture(scope="module")
def contribution(built_mini_archive, tmp_path_factory):
    # a clone of the shared mini archive, its snippet cache included (only new snippets execute)
    project = Path(shutil.copytree(built_mini_archive, tmp_path_factory.mktemp("contributor") / "clone",
                                   ignore=shutil.ignore_patterns("site")))
    contributing = (project / "CONTRIBUTING.md").read_text(encoding="utf-8")
    cmd = _documented_command(contributing, "## English")
    chinese = _documented_command(contributing, "## 中文")
    assert [a for a in chinese if a.startswith("--")] == [a for a in cmd if a.startswith("--")]
    scaffold = _run(cmd, project)
    return project, cmd, scaffold


def test_the_documented_example_does_not_collide_with_the_archive(contribution):
    """Copied verbatim, the example must not be refused for a date or address the archive already has."""
    _, cmd, _ = contribution
    date, source = cmd[cmd.index("--date") + 1], cmd[cmd.index("--source") + 1]
    for post in sorted((mini_archive.REPO / "docs" / "posts").glob("*.md")):
        text = post.read_text(encoding="utf-8")
        assert f"\ndate: {date}\n" not in text, f"CONTRIBUTING.md's example date is {post.name}'s"
        assert f"\nsource: {source}\n" not in text, f"CONTRIBUTING.md's example address is {post.name}'s"


def test_the_documented_command_scaffolds_four_files(contribution):
    project, cmd, scaffold = contribution
    assert scaffold.returncode == 0, scaffold.stderr
    slug = cmd[cmd.index("scripts/new_article.py") + 1]
    module = slug.replace("-", "_")
    for rel in (f"docs/posts/{slug}.md", f"snippets/{slug}/demo.py", f"spaces_code/{module}.py",
                f"tests/test_{module}.py"):
        assert f"created {rel}" in scaffold.stdout
        assert MARK in (project / rel).read_text(encoding="utf-8"), rel


def test_contributor_gets_the_article_with_its_executed_snippet_onto_the_site(contribution, tmp_path):
    scaffolded, cmd, _ = contribution
    # the author's work happens on a copy: the other tests see the scaffold as it was written
    project = Path(shutil.copytree(scaffolded, tmp_path / "clone"))
    slug = cmd[cmd.index("scripts/new_article.py") + 1]
    module = slug.replace("-", "_")
    post, snippet = project / f"docs/posts/{slug}.md", project / f"snippets/{slug}/demo.py"
    code, test = project / f"spaces_code/{module}.py", project / f"tests/test_{module}.py"

    # The scaffold is refused until the author has done the work, with every marker named.
    check = _run([sys.executable, "scripts/validate.py"], project)
    assert check.returncode == 1
    markers = [line for line in check.stderr.splitlines() if "scaffold placeholder left" in line]
    assert {line.split(":")[0] for line in markers} == {str(p.relative_to(project)) for p in (post, snippet, code, test)}
    refused = mini_archive.build(project)
    assert refused.returncode == 1 and "scaffold placeholder left" in refused.stderr
    assert _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)], project).returncode == 1

    # What an author writes, marker by marker.
    _replace(post, rf"<!-- {MARK}: paste the article's excerpt.*?-->",
             "均方根归一化（RMS Norm）只做缩放、不做平移：把向量除以它的均方根\n\n"
             "$$\\text{RMS}(x) = \\sqrt{\\frac{1}{d}\\sum_{i=1}^d x_i^2}$$\n\n"
             "于是归一化之后每个向量的均方根都是1。")
    _replace(post, rf"<!-- {MARK}: say in one or two.*?-->\n",
             "下面的代码随机生成几个向量，归一化前后分别打印它们的均方根。\n")
    _replace(code, rf"{MARK}: name the paper.*?then delete this line\.\n",
             "Paper: Zhang & Sennrich, *Root Mean Square Layer Normalization* (NeurIPS 2019).\n\n"
             "$$\\bar{x} = \\frac{x}{\\text{RMS}(x)}, \\quad \\text{RMS}(x) = \\sqrt{\\tfrac{1}{d}\\textstyle\\sum_i x_i^2}$$\n")
    _replace(code, r"def example\(.*", (
        "def rms_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:\n"
        '    """``x`` divided by the root mean square of its last dimension."""\n'
        "    return x / x.pow(2).mean(dim=-1, keepdim=True).add(eps).sqrt()\n"))
    _replace(snippet, rf'"""{MARK}:.*?"""\n',
             '"""RMS Norm: every vector comes out with root mean square 1."""\nimport torch\n\n')
    _replace(snippet, r"import example\n", "import rms_norm\n")
    _replace(snippet, r"x = __import__.*", (
        "x = 3 * torch.randn(4, 8, generator=generator, device=device)\n"
        'print("RMS before:", [round(v, 3) for v in x.pow(2).mean(-1).sqrt().tolist()])\n'
        'print("RMS after: ", [round(v, 3) for v in rms_norm(x).pow(2).mean(-1).sqrt().tolist()])\n'))
    _replace(test, rf"    # {MARK}: replace with a test.*", (
        "    g = torch.Generator(device=device).manual_seed(0)\n"
        "    x = 5 * torch.randn(6, 32, generator=g, device=device)\n"
        "    rms = rms_norm(x).pow(2).mean(-1).sqrt()\n"
        "    assert torch.allclose(rms, torch.ones(6, device=device), atol=1e-4)\n"))
    _replace(test, r"import pytest\n\nfrom spaces_code\.\w+ import example",
             f"import torch\n\nfrom spaces_code.{module} import rms_norm")
    assert MARK not in "".join(p.read_text(encoding="utf-8") for p in (post, snippet, code, test))

    # The checks of CONTRIBUTING.md's step 3, then the build: all pass.
    check = _run([sys.executable, "scripts/validate.py"], project)
    assert check.returncode == 0, check.stderr
    tested = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)], project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    built = mini_archive.build(project)
    assert built.returncode == 0, built.stderr
    page = (project / "site" / slug / "index.html").read_text(encoding="utf-8")
    start = page.index(f'data-snippet="snippets/{slug}/demo.py"')
    div = page[start:page.index("</div>", start)]
    assert "RMS after:  [1.0, 1.0, 1.0, 1.0]" in div and "RMS before:" in div
    assert "设备 cpu" in div
    module_page = (project / "site" / "code" / module / "index.html").read_text(encoding="utf-8")
    assert f'href="../../{slug}/"' in module_page  # the module's page links back to the article
    assert f'<a href="../code/{module}/">spaces_code/{module}.py</a>' in page
    assert (project / "site" / "notebooks" / slug / f"{slug}.ipynb").is_file()
