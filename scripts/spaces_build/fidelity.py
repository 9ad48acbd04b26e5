# Copied from the project's shared tools (shared/tools/check_fidelity.py, handed out with the
# article seeds); the only change is DEFAULT_SEEDS, which points at this repository's provenance
# copy of the seeds (sources/seeds/). scripts/check_fidelity.py runs it, tests/test_fidelity.py and
# tests/test_site.py use it; keep it in step with the original.
"""Check that the archive keeps every paragraph of the original article text.

Usage: check_fidelity.py [DOCS_DIR] [--seeds SEEDS_DIR] [--verbose]

Every paragraph of the source texts in shared/seeds/ (prose and formulas) must
appear in the Markdown under DOCS_DIR (default: docs/ of the current directory).
Page chrome of the original site (date lines, "read more" links, comment
counters, the hosting banner) is not required.

Comparison is on normalized text: all whitespace is removed; outside formulas,
Markdown link syntax [text](url), emphasis markers and backslash escapes are
dropped; YAML quoting of titles is tolerated, and full-width ：？，（）！； count
as their ASCII forms (the seeds use ASCII, the original titles full-width). Formulas must match verbatim up
to whitespace.

Exit status: 0 when nothing is missing, 1 when a paragraph is missing, 2 on
bad arguments.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parent.parent / "sources" / "seeds"

DATE_LINE = re.compile(r"^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$")
CHROME = (
    re.compile(r"^点击阅读全文"),
    re.compile(r"^分类:.*标签:.*"),
    re.compile(r"^宇宙驿站"),
    re.compile(r"^参与科学空间$"),
    re.compile(r"^为了保证你的利益"),
    re.compile(r"^会员注册"),
)
MATH = re.compile(
    r"(\$\$.+?\$\$|\$[^$]+?\$|\\begin\{equation\}.+?\\end\{equation\}|\\\[.+?\\\]|\\\(.+?\\\))",
    re.S,
)
MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>\"'])")


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


FULLWIDTH = str.maketrans("：？，（）！；", ":?,()!;")


def normalize_prose(text: str) -> str:
    text = text.translate(FULLWIDTH)
    text = MD_LINK.sub(r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = MD_ESCAPE.sub(r"\1", text)
    text = text.replace("**", "").replace("__", "")
    text = text.replace('"', "").replace("'", "")
    return squash(text)


def split_math(text: str) -> tuple[str, list[str]]:
    """Return (prose with formulas removed, formulas)."""
    formulas = [m.group(0) for m in MATH.finditer(text)]
    prose = MATH.sub("\u2063", text)  # invisible separator keeps pieces apart
    return prose, formulas


def seed_paragraphs(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    paragraphs: list[str] = []
    buf: list[str] = []
    in_equation = False
    for line in lines:
        if in_equation:
            buf.append(line)
            if "\\end{equation}" in line:
                paragraphs.append("\n".join(buf))
                buf, in_equation = [], False
            continue
        if "\\begin{equation}" in line and "\\end{equation}" not in line:
            buf, in_equation = [line], True
            continue
        stripped = line.strip()
        if stripped:
            paragraphs.append(stripped)
    if buf:
        paragraphs.append("\n".join(buf))
    # the last line of one file can run into the next article's date ("...24 Sep")
    split: list[str] = []
    for p in paragraphs:
        m = re.match(r"^(.*?)(\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec))$", p)
        if m and m.group(1).endswith("..."):
            split.extend([m.group(1), m.group(2)])
        else:
            split.append(p)
    return [p for p in split if not DATE_LINE.match(p) and not any(c.match(p) for c in CHROME)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs", nargs="?", default="docs")
    ap.add_argument("--seeds", default=str(DEFAULT_SEEDS))
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    docs, seeds = Path(args.docs), Path(args.seeds)
    if not docs.is_dir():
        print(f"check_fidelity: no folder {docs}", file=sys.stderr)
        return 2
    if not seeds.is_dir():
        print(f"check_fidelity: no seeds folder {seeds}", file=sys.stderr)
        return 2

    corpus_prose, corpus_math = [], []
    for md in sorted(docs.rglob("*.md")):
        text = md.read_text(encoding="utf-8")
        prose, formulas = split_math(text)
        corpus_prose.append(normalize_prose(prose))
        corpus_math.extend(squash(f) for f in formulas)
    prose_blob = "\n".join(corpus_prose)
    math_blob = "\n".join(corpus_math)

    total = missing = 0
    for seed in sorted(seeds.glob("*.txt")):
        lost: list[str] = []
        paragraphs = seed_paragraphs(seed)
        for para in paragraphs:
            prose, formulas = split_math(para)
            ok = all(squash(f) in math_blob for f in formulas)
            for piece in prose.split("\u2063"):
                piece = normalize_prose(piece)
                if piece and piece not in prose_blob:
                    ok = False
            total += 1
            if not ok:
                lost.append(para)
        missing += len(lost)
        print(f"{seed.name}: {len(paragraphs) - len(lost)}/{len(paragraphs)} paragraphs kept")
        for para in lost if args.verbose else lost[:3]:
            print(f"  missing: {para[:90]}{'...' if len(para) > 90 else ''}")
        if lost and not args.verbose and len(lost) > 3:
            print(f"  ... and {len(lost) - 3} more (--verbose lists all)")
    print(f"fidelity: {total - missing}/{total} paragraphs kept")
    return 1 if missing else 0


if __name__ == "__main__":  # python -m spaces_build.fidelity
    sys.exit(main())
