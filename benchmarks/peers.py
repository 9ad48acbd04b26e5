"""Peers side by side (issue 14): the archive's pages and snippets built by two other engines.

    python benchmarks/peers.py [--module spaces_code/NAME.py] [--json PATH] [--keep]

The same articles, with the same snippet sources, built two other ways on a temporary copy of the
project (``benchmarks/run.py`` calls :func:`measure` inside its run, so the numbers share one machine
load with ours):

- ``markdown_exec``: every page of ``docs/posts`` with each snippet include replaced by the snippet's
  source in a markdown-exec block (````` ```python exec="on" result="text" source="above" `````), built by
  ``mkdocs build`` with the ``markdown-exec`` plugin. Blocks execute inside the MkDocs process.
- ``mkdocs_jupyter``: every page with snippets as a notebook (the page's text as Markdown cells, each
  snippet a code cell), built by ``mkdocs build`` with mkdocs-jupyter's ``execute: true`` (its own
  cache on, the default). Each notebook executes in a fresh Jupyter kernel.

For each: ``cold_seconds`` (empty caches), ``warm_seconds`` (nothing changed), then one
``spaces_code`` module is touched (a comment appended, as ``benchmarks/run.py`` does for ours) and
the site rebuilt: ``executed_after_touch`` is how many snippets ran in that rebuild, and
``stale_pages_after_touch`` how many pages show the output of a snippet that imports the touched
module (the importers our engine recorded) without having run it again since the touch: output of
code that is no longer the code in the repository. Executions are counted, not assumed: an audit
hook (``sitecustomize`` on the builds' ``PYTHONPATH``, also in the kernels) logs every compilation
of a snippet's source. ``pages_with_errors`` counts pages that show a traceback.

What the peers do not do, and ours does, so that their times are if anything flattered: they save no
figures (the snippets' matplotlib figures are left open, never rendered), use MkDocs' own theme and no
other plugin, and do not sandbox or time out the snippets.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?\n)(?:---|\.\.\.)[ \t]*\n", re.DOTALL)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[^\n]*\n"
                   r"[ \t]*-+8<-+[ \t]+([\"'])(?P<path>snippets/[^\"'\n]+?\.py)\3[ \t]*\n"
                   r"(?P=indent)(?P=fence)[ \t]*$", re.MULTILINE)
TOUCH = "\n# benchmarks/peers.py: touched\n"
PEERS = ("markdown_exec", "mkdocs_jupyter")

SITECUSTOMIZE = '''\
"""benchmarks/peers.py: log each compilation of a snippet's source (one line per process and snippet)."""
import hashlib, json, os, sys

_log = os.environ.get("SPACES_PEERS_LOG")
_known = json.load(open(os.environ["SPACES_PEERS_SOURCES"])) if _log else {}
_lengths = {v[1] for v in _known.values()}
_seen = set()


def _norm(text):
    return "\\n".join(line.rstrip() for line in text.strip().splitlines())


def _hook(event, args):
    if event != "compile" or not args or not isinstance(args[0], (str, bytes)):
        return
    source = args[0].decode("utf-8", "replace") if isinstance(args[0], bytes) else args[0]
    text = _norm(source)
    if len(text) not in _lengths:
        return
    found = _known.get(hashlib.sha256(text.encode()).hexdigest())
    if found and found[0] not in _seen:
        _seen.add(found[0])
        with open(_log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {found[0]}\\n")


if _log:
    sys.addaudithook(_hook)
'''


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _split(page: str) -> list[tuple[str, str]]:
    """The page after its front matter as ``[("md", text), ("snippet", rel), ...]``."""
    m = FRONT_MATTER.match(page)
    body = page[m.end():] if m else page
    parts, last = [], 0
    for inc in FENCE.finditer(body):
        parts.append(("md", body[last:inc.start()]))
        parts.append(("snippet", inc.group("path")))
        last = inc.end()
    parts.append(("md", body[last:]))
    return [(kind, text) for kind, text in parts if kind == "snippet" or text.strip()]


def _title(page: str, fallback: str) -> str:
    m = FRONT_MATTER.match(page)
    if m:
        import yaml

        meta = yaml.safe_load(m.group("yaml")) or {}
        if isinstance(meta, dict) and meta.get("title"):
            return str(meta["title"])
    return fallback


def prepare(project: Path, dest: Path, only: set[str] | None = None) -> dict:
    """Write both peer projects under ``dest`` from ``project``'s posts (``only`` these page names)."""
    import nbformat
    from nbformat import v4

    pages: dict[str, list[str]] = {}  # page name -> snippets it shows
    sources: dict[str, list] = {}  # sha256 of the normalised source -> [snippet rel, length]
    md_docs = dest / "markdown_exec" / "docs"
    nb_docs = dest / "mkdocs_jupyter" / "docs"
    md_docs.mkdir(parents=True)
    nb_docs.mkdir(parents=True)
    for path in sorted((project / "docs" / "posts").glob("*.md")):
        if only is not None and path.stem not in only:
            continue
        page = path.read_text(encoding="utf-8")
        parts = _split(page)
        title = _title(page, path.stem)
        snippets = [rel for kind, rel in parts if kind == "snippet"]
        pages[path.stem] = snippets
        md = [f"# {title}\n\n"]
        cells = [v4.new_markdown_cell(f"# {title}")]
        for kind, text in parts:
            if kind == "md":
                md.append(text)
                cells.append(v4.new_markdown_cell(text.strip("\n")))
                continue
            source = (project / text).read_text(encoding="utf-8")
            norm = _norm(source)
            sources[hashlib.sha256(norm.encode()).hexdigest()] = [text, len(norm)]
            md.append(f'\n````python exec="on" result="text" source="above"\n{source.rstrip()}\n````\n\n')
            cells.append(v4.new_code_cell(source.rstrip("\n")))
        (md_docs / f"{path.stem}.md").write_text("".join(md), encoding="utf-8")
        if snippets:
            nb = v4.new_notebook(cells=cells, metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"}})
            nbformat.validate(nb)
            nbformat.write(nb, nb_docs / f"{path.stem}.ipynb")
        else:
            (nb_docs / f"{path.stem}.md").write_text("".join(md), encoding="utf-8")
    (dest / "markdown_exec" / "mkdocs.yml").write_text(
        "site_name: peers / markdown-exec\nuse_directory_urls: false\n"
        "plugins:\n  - markdown-exec\nmarkdown_extensions:\n  - pymdownx.superfences\n", encoding="utf-8")
    (dest / "mkdocs_jupyter" / "mkdocs.yml").write_text(
        "site_name: peers / mkdocs-jupyter\nuse_directory_urls: false\n"
        "plugins:\n  - mkdocs-jupyter:\n      execute: true\n      include: ['*.ipynb']\n"
        "      allow_errors: true\n", encoding="utf-8")
    hook = dest / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    (dest / "sources.json").write_text(json.dumps(sources), encoding="utf-8")
    (dest / "pages.json").write_text(json.dumps(pages), encoding="utf-8")
    return pages


def _build(peer_dir: Path, project: Path, dest: Path, timeout: float) -> tuple[float, list[str], str]:
    """One ``mkdocs build``: wall seconds, the snippets that ran, the build's output."""
    log = dest / "executions.log"
    log.unlink(missing_ok=True)
    log.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(dest / "hook"), str(project)]),
        SPACES_PEERS_LOG=str(log), SPACES_PEERS_SOURCES=str(dest / "sources.json"),
        MPLBACKEND="Agg", KERAS_BACKEND="torch", SPACES_DEVICE="cpu", NO_MKDOCS_2_WARNING="1",
        JUPYTER_PLATFORM_DIRS="1",
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--site-dir", "site"], cwd=peer_dir,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    wall = time.perf_counter() - start
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"mkdocs build in {peer_dir} failed ({proc.returncode}):\n{output[-3000:]}")
    ran = sorted({line.split(" ", 1)[1] for line in log.read_text(encoding="utf-8").splitlines() if " " in line})
    return wall, ran, output


def _pages_with_errors(site: Path) -> int:
    return sum(1 for path in site.glob("*.html") if "Traceback" in path.read_text(encoding="utf-8", errors="replace"))


def measure(project: Path, module: str, importers: set[str], dest: Path | None = None,
            timeout: float = 3600, peers=PEERS, only: set[str] | None = None) -> dict:
    """Cold, warm and after-touch builds of each peer, on ``project`` (a copy: ``module`` is touched).

    ``module`` is repository-relative (``spaces_code/NAME.py``); ``importers`` the snippets that import
    it (as our engine recorded). Returns ``{peer: {...}}``.
    """
    own = dest is None
    dest = Path(tempfile.mkdtemp(prefix="spaces-peers-")) if own else dest
    try:
        pages = prepare(project, dest, only)
        total = sum(len(s) for s in pages.values())
        results = {}
        original = (project / module).read_text(encoding="utf-8")
        for peer in peers:
            peer_dir = dest / peer
            shutil.rmtree(peer_dir / "site", ignore_errors=True)
            shutil.rmtree(peer_dir / ".cache", ignore_errors=True)
            (project / module).write_text(original, encoding="utf-8")
            cold, ran_cold, _ = _build(peer_dir, project, dest, timeout)
            errors = _pages_with_errors(peer_dir / "site")
            warm, ran_warm, _ = _build(peer_dir, project, dest, timeout)
            (project / module).write_text(original + TOUCH, encoding="utf-8")
            touched, ran_touch, _ = _build(peer_dir, project, dest, timeout)
            (project / module).write_text(original, encoding="utf-8")
            stale = sorted(name for name, shown in pages.items()
                           if any(rel in importers and rel not in ran_touch for rel in shown))
            results[peer] = {
                "cold_seconds": round(cold, 2),
                "warm_seconds": round(warm, 2),
                "touch_seconds": round(touched, 2),
                "executed_cold": len(ran_cold),
                "executed_warm": len(ran_warm),
                "executed_after_touch": len(ran_touch),
                "stale_pages_after_touch": len(stale),
                "stale_pages": stale,
                "pages_with_errors": errors,
                "snippets": total,
            }
        return results
    finally:
        if own:
            shutil.rmtree(dest, ignore_errors=True)


def _importers_by_source(project: Path, module: str) -> set[str]:
    """Without a cache to ask: the snippets that name the module in an import (direct imports only)."""
    name = module[:-3].replace("/", ".")
    pattern = re.compile(rf"^\s*(?:from\s+{re.escape(name)}\s+import|import\s+{re.escape(name)}\b)", re.MULTILINE)
    return {p.relative_to(project).as_posix() for p in (project / "snippets").rglob("*.py")
            if pattern.search(p.read_text(encoding="utf-8"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", default="spaces_code/attention_masks.py")
    parser.add_argument("--json", default=None)
    parser.add_argument("--peer", action="append", choices=PEERS, help="only this peer (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--pages", default=None, help="comma-separated page names (a quick run)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="spaces-peers-"))
    try:
        project = tmp / "project"
        ignore = shutil.ignore_patterns(".venv", ".git", ".cache", "site", "__pycache__", "*.egg-info")
        shutil.copytree(REPO, project, ignore=ignore, symlinks=True)
        importers = _importers_by_source(project, args.module)
        results = measure(project, args.module, importers, dest=tmp / "peers", peers=tuple(args.peer or PEERS),
                          only=set(args.pages.split(",")) if args.pages else None)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
