"""Two clean builds from nothing must produce the same site: the archive's reproducibility check.

    spaces check-reproducible [--jobs N] [--device cpu|cuda|auto] [--work DIR] [--keep]

Copies the repository's sources twice (tracked and untracked files, without ``.cache/``, ``site/``,
``.venv/``, ``.git/``), builds each copy from nothing with ``spaces build`` one after the other,
and compares

- every snippet's output, from the two caches: text, figure bytes, dependencies;
- every file of the two sites, byte for byte.

Exactly these differences are allowed, nothing else:

- the output of the snippets declared ``# spaces: timing-dependent`` (first lines of the snippet), text
  and figures, wherever it appears (its page, the notebook and its page, the search index, the feeds,
  where its whole block is masked, and the rendered notebook page, where the outputs of the cell whose
  source declares it are masked): each build's page shows a note saying so;
- the run report (``executions/``, ``executions.json`` and the report's search-index entry): each row's
  measured seconds, peak memory, ``executed_at`` time and whether it came from the cache, and the
  totals, are measurements of the build, not outputs;
- the build time of the RSS feeds (the channel's ``<pubDate>``/``<lastBuildDate>``) and the build date
  of the sitemap (``<lastmod>``).

Exit status 0 when the builds agree up to those, 1 with the list of differences. The tests use
:func:`compare` on small projects (``tests/test_reproducible.py``); this script does the full
comparison of the real archive (two cold builds: minutes). :func:`compare_sites` compares two sites
alone (e.g. a build before and after a change of the build itself).
"""
from __future__ import annotations

import argparse
import base64
import gzip
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cache import Cache
from .parsing import TIMING_MARK as TIMING_MARK_LINE
from .project import copy_tree, find_root
from .render import figure_src_uri

MEASURED = ("seconds", "peak_memory_mb", "executed_at", "cached")
TIMING_MASK = "\u2039timing-dependent output\u203a"


# --------------------------------------------------------------------------------------------------
# copies and builds


def copy_sources(repo: Path, dest: Path) -> Path:
    """The working tree's sources (tracked and untracked, not ignored) into ``dest``."""
    return copy_tree(repo, dest)


def build(project: Path, jobs: int, device: str, log=sys.stderr) -> float:
    """A build of ``project`` from where it stands; returns seconds, raises on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "spaces_build.cli", "build", "--jobs", str(jobs), "--device", device],
                          cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"build of {project} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# what each build produced


def snippet_outputs(project: Path) -> dict[str, dict]:
    """Per snippet, from the cache: timing flag, output text, figure bytes, dependencies."""
    found = {}
    cache = Cache(project)
    for entry in cache.all_entries():
        found[entry.snippet] = {
            "timing": entry.timing_dependent,
            "text": entry.output + entry.output_tail,
            "truncated": entry.truncated,
            "figures": [cache.figure_path(sha).read_bytes() for sha in entry.figures],
            "deps": entry.deps,
            "device": entry.device,
            "versions": entry.versions,
        }
    return found


_figure_site_path = figure_src_uri


# --------------------------------------------------------------------------------------------------
# comparison


def _encodings(text: str) -> list[str]:
    escaped = html.escape(text, quote=False)
    forms = [text, escaped, html.escape(text), html.escape(escaped, quote=False),
             json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], json.dumps(escaped)[1:-1]]
    return list(dict.fromkeys(forms))


def timing_substitutions(a: dict[str, dict], b: dict[str, dict]) -> list[tuple[str, str]]:
    """(text in B, text in A) pairs that turn B's timing-dependent outputs into A's, longest first."""
    pairs: dict[str, str] = {}
    for rel in sorted(a.keys() & b.keys()):
        if not (a[rel]["timing"] and b[rel]["timing"]):
            continue
        ta, tb = a[rel]["text"], b[rel]["text"]
        units = [(tb.rstrip(), ta.rstrip()), (tb, ta)]
        units += [(lb, la) for la, lb in zip(ta.splitlines(), tb.splitlines()) if la != lb and len(lb.strip()) >= 3]
        for fa, fb in zip(a[rel]["figures"], b[rel]["figures"]):
            sa, sb = fa.decode("utf-8", "replace"), fb.decode("utf-8", "replace")
            units.append((sb, sa))
            pairs[base64.b64encode(fb).decode()] = base64.b64encode(fa).decode()
        for ub, ua in units:
            if ub != ua:
                for eb, ea in zip(_encodings(ub), _encodings(ua)):
                    pairs.setdefault(eb, ea)
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _substitute(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        if old and old in text:
            text = text.replace(old, new)
    return text


def _normalize_executions_html(text: str) -> str:
    """The run report without what each build measures: seconds, memory, times, cache use, totals."""
    text = re.sub(r'<td class="(num|when)">[^<]*</td>', r'<td class="\1"></td>', text)
    text = re.sub(r"<td>(是|否)</td>", "<td></td>", text)
    text = re.sub(r"<td>\d+ 缓存</td>", "<td></td>", text)
    text = re.sub(r'<p class="snippet-executions-summary">.*?</p>', "", text, flags=re.S)
    rows = re.findall(r"<tr><td>.*?</tr>", text)
    for row in rows:  # rows are ordered by measured time: compare them as a set
        text = text.replace(row, "", 1)
    return text + "\n".join(sorted(rows))


# A timing-dependent output block, as HTML, inside JSON strings or escaped in an RSS description
# (which also folds its lines): its content is masked in the feeds.
_QUOTE = r'(?:\\?"|&#34;|&quot;)'
TIMING_BLOCK = re.compile(rf"(data-timing-dependent={_QUOTE}true{_QUOTE}).*?(</div>|&lt;/div&gt;)", re.S)


# A rendered notebook page (mkdocs-jupyter): one ``jp-Cell`` div per cell, the source highlighted in
# the input area, the outputs in ``jp-Cell-outputWrapper``; the notebook ends with this comment.
NOTEBOOK_CELL = re.compile(r'(?=<div class="jp-Cell )')
NOTEBOOK_END = "<!-- jp-Notebook -->"
OUTPUT_WRAPPER = '<div class="jp-Cell-outputWrapper">'


def _mask_notebook_page(text: str) -> str:
    """The outputs of the code cells whose source carries ``# spaces: timing-dependent`` (the
    snippet's own declaration, in its first lines) replaced by the mask, whatever they show."""
    head, end, tail = text.partition(NOTEBOOK_END)
    cells = NOTEBOOK_CELL.split(head)
    for i, cell in enumerate(cells):
        source, wrapper, _ = cell.partition(OUTPUT_WRAPPER)
        if not wrapper:
            continue
        plain = html.unescape(re.sub(r"<[^>]+>", "", source))
        if any(TIMING_MARK_LINE.match(line) for line in plain.splitlines()):
            cells[i] = source + wrapper + TIMING_MASK + "</div>"
    return "".join(cells) + end + tail


def _normalize_text(rel: str, text: str) -> str:
    if re.fullmatch(r"notebooks/[^/]+/index\.html", rel):
        text = _mask_notebook_page(text)
    if rel.startswith("feed_"):
        text = TIMING_BLOCK.sub(lambda m: m.group(1) + TIMING_MASK + m.group(2), text)
    if rel.startswith("feed_rss_") and rel.endswith(".xml"):
        head, sep, rest = text.partition("<item>")
        head = re.sub(r"<(pubDate|lastBuildDate)>[^<]*</\1>", r"<\1></\1>", head)
        return head + sep + rest
    if rel.startswith("sitemap.xml"):
        return re.sub(r"<lastmod>[^<]*</lastmod>", "<lastmod></lastmod>", text)
    if rel == "executions/index.html":
        return _normalize_executions_html(text)
    if rel == "executions.json":
        rows = [{k: v for k, v in row.items() if k not in MEASURED} for row in json.loads(text)]
        return json.dumps(sorted(rows, key=lambda r: r["snippet"]), ensure_ascii=False, indent=1, sort_keys=True)
    if rel == "search/search_index.json":
        index = json.loads(text)
        for doc in index.get("docs", []):
            if doc.get("location", "").startswith("executions/"):
                doc["text"] = ""  # the run report's measurements; its page is compared above
            else:
                doc["text"] = doc.get("text", "").replace("\u200b", "")  # jieba's word breaks
        return json.dumps(index, ensure_ascii=False, indent=0)
    if rel.endswith(".ipynb"):
        nb = json.loads(text)
        for cell in nb.get("cells", []):
            if cell.get("metadata", {}).get("spaces", {}).get("timing_dependent"):
                cell["outputs"] = [TIMING_MASK]
        return json.dumps(nb, ensure_ascii=False, indent=1, sort_keys=True)
    return text


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"at character {i}: {a[max(0, i - 60):i + 60]!r} vs {b[max(0, i - 60):i + 60]!r}"


def compare(a_root: Path, b_root: Path, a_site: Path | None = None, b_site: Path | None = None) -> list[str]:
    """Differences between two builds beyond what the module docstring allows; [] when none."""
    a_site, b_site = a_site or a_root / "site", b_site or b_root / "site"
    problems = []
    a_out, b_out = snippet_outputs(a_root), snippet_outputs(b_root)
    if a_out.keys() != b_out.keys():
        problems.append(f"snippets cached only in one build: {sorted(a_out.keys() ^ b_out.keys())}")
    timing_figures = set()
    for rel in sorted(a_out.keys() & b_out.keys()):
        x, y = a_out[rel], b_out[rel]
        if x["timing"] != y["timing"]:
            problems.append(f"{rel}: timing-dependent in one build only")
        if x["timing"] and y["timing"]:
            timing_figures |= {_figure_site_path(rel, i) for i in range(1, max(len(x["figures"]), len(y["figures"])) + 1)}
            if len(x["figures"]) != len(y["figures"]):
                problems.append(f"{rel}: {len(x['figures'])} vs {len(y['figures'])} figures")
            continue
        for key in ("text", "truncated", "deps", "device", "versions"):
            if x[key] != y[key]:
                detail = _first_difference(x[key], y[key]) if key == "text" else f"{x[key]!r} vs {y[key]!r}"
                problems.append(f"{rel}: {key} differs {detail}")
        if len(x["figures"]) != len(y["figures"]):
            problems.append(f"{rel}: {len(x['figures'])} vs {len(y['figures'])} figures")
        for i, (fa, fb) in enumerate(zip(x["figures"], y["figures"]), start=1):
            if fa != fb:
                problems.append(f"{rel}: figure {i} differs ({len(fa)} vs {len(fb)} bytes)")

    problems += compare_sites(a_site, b_site, timing_substitutions(a_out, b_out), timing_figures)
    return problems


def compare_sites(a_site: Path, b_site: Path, pairs: list[tuple[str, str]] = (),
                  skip: set[str] = frozenset()) -> list[str]:
    """Differences between two built sites beyond the measurements of the build (module docstring);
    ``pairs`` turn B's timing-dependent outputs into A's, ``skip`` names site files not compared."""
    problems = []
    a_files = {p.relative_to(a_site).as_posix() for p in a_site.rglob("*") if p.is_file()}
    b_files = {p.relative_to(b_site).as_posix() for p in b_site.rglob("*") if p.is_file()}
    if a_files != b_files:
        problems.append(f"files in one site only: {sorted(a_files ^ b_files)[:20]}")
    for rel in sorted(a_files & b_files):
        if rel in skip:
            continue
        da, db = _read(a_site / rel), _read(b_site / rel)
        if da == db:
            continue
        try:
            ta, tb = da.decode("utf-8"), db.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"site/{rel}: binary file differs")
            continue
        na, nb = _normalize_text(rel, ta), _normalize_text(rel, _substitute(tb, pairs))
        if na != nb:
            problems.append(f"site/{rel}: differs {_first_difference(na, nb)}")
    return problems


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="spaces check-reproducible", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                        help="device of both builds (default cpu: the same on every machine)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the two copies (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the two copies for inspection")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="spaces-reproducible-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    copies = [work / "a", work / "b"]
    try:
        for copy in copies:
            if copy.exists():
                shutil.rmtree(copy)
            copy_sources(find_root(), copy)
            seconds = build(copy, args.jobs, args.device)
            n = len(list((copy / ".cache" / "snippets").rglob("*.json")))
            print(f"clean build {copy.name}: {n} snippets executed, {seconds:.0f} s", file=sys.stderr)
        a_out = snippet_outputs(copies[0])
        timing = sorted(rel for rel, o in a_out.items() if o["timing"])
        figures = sum(len(o["figures"]) for o in a_out.values())
        problems = compare(*copies)
        pages = sum(1 for _ in (copies[0] / "site").rglob("*.html"))
        if problems:
            print(f"NOT reproducible: {len(problems)} difference(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"reproducible: {len(a_out)} snippets ({figures} figures) and {pages} pages identical across two "
              f"clean builds; excluded as timing-dependent: {', '.join(timing) or 'none'}")
        return 0
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"copies kept in {work}", file=sys.stderr)

