"""One-time importer: split the listing pages in ``sources/seeds/`` into one post per article.

This is how ``docs/posts/*.md`` were created; it is kept as provenance. It never overwrites a
post that already exists (authors edit posts by hand afterwards: the build never rewrites them).

    python scripts/import_seeds.py [--force-new-only]

The seeds are five listing pages of kexue.fm, eight excerpts each; the metadata (title, date, slug,
URL, category, tags, series) comes from ``scripts/articles.yml``. Body text is copied verbatim; the
only changes are Markdown structure: blank lines around display formulas, ``##`` for section
headings, fenced code for the two code listings, one figure placeholder per image caption, and the
"点击阅读全文..." line turned into a link to the original.
"""
from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "sources" / "seeds"
POSTS = ROOT / "docs" / "posts"
META = ROOT / "scripts" / "articles.yml"

DATE_LINE = re.compile(r"^(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$")
CHROME = ("宇宙驿站", "版权科学空间", "参与科学空间", "为了保证你的利益", "会员注册", "分类:")
READ_MORE = "点击阅读全文..."
# The two code listings of the seeds: (article number, first line, last line).
CODE = {4: ("tokens = {}", "        tokens[token] = tokens.get(token, 0) + 1"),
        7: ("x_in = Input(shape=(784,))", "x = layer(x) # 再次调用")}


def split_articles() -> list[list[str]]:
    """Return the raw lines of each excerpt, in seed order (= article number order)."""
    articles: list[list[str]] = []
    for seed in sorted(SEEDS.glob("*.txt")):
        text = seed.read_text(encoding="utf-8")
        # a page can run straight into the next date ("点击阅读全文...12 Feb")
        text = re.sub(r"(点击阅读全文\.\.\.)(\d{1,2} [A-Z][a-z]{2})\n", r"\1\n\2\n", text)
        current: list[str] | None = None
        for line in text.splitlines():
            if DATE_LINE.match(line.strip()):
                current = []
                articles.append(current)
            elif current is not None:
                if line.startswith(CHROME):
                    continue
                current.append(line)
    return articles


def paragraphs(lines: list[str], number: int) -> list[tuple[str, str]]:
    """Group lines into (kind, text) blocks: para, equation, code."""
    blocks: list[tuple[str, str]] = []
    code_start, code_end = CODE.get(number, (None, None))
    i = 0
    while i < len(lines):
        line = lines[i]
        if code_start is not None and line == code_start:
            j = max(k for k in range(i, len(lines)) if lines[k] == code_end)
            blocks.append(("code", "\n".join(lines[i:j + 1])))
            i = j + 1
            continue
        if "\\begin{equation}" in line:
            j = i
            while "\\end{equation}" not in lines[j]:
                j += 1
            blocks.append(("equation", "\n".join(lines[i:j + 1])))
            i = j + 1
            continue
        if line.strip():
            kind = "equation" if line.startswith("$$") and line.rstrip().endswith("$$") else "para"
            blocks.append((kind, line))
        i += 1
    return blocks


def is_heading(text: str) -> bool:
    return (len(text) <= 12 and not re.search(r"[。,:?!、;…~$(]|\.\.\.", text)
            and not text.startswith(("1", "2", "x", "tokens")))


def render(number: int, meta: dict, blocks: list[tuple[str, str]]) -> str:
    url = meta["source"] if meta["source"] != "unknown" else "https://kexue.fm/"
    front = {
        "title": meta["title"],
        "date": datetime.date.fromisoformat(str(meta["date"])),
        "slug": meta["slug"],
        "categories": [meta["category"]],
        "tags": meta["tags"],
        "source": url,
    }
    if meta["source"] == "unknown":
        front["source_unknown"] = True
    if meta.get("category_assigned"):
        front["category_assigned"] = True
    if meta.get("series"):
        front["series"] = meta["series"]
    front["license"] = "CC BY-NC-SA"
    front["authors"] = ["sujianlin"]
    out = ["---", yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip(), "---", ""]
    out += [f"# {meta['title']}", ""]
    plain_title = meta["title"].translate(str.maketrans("：？，（）！", ":?,()!"))
    k = 0
    # the seed's own title line (ASCII punctuation) is replaced by the page title
    if blocks and blocks[0][0] == "para" and blocks[0][1].strip() == plain_title:
        k = 1
    read_more_done = False
    while k < len(blocks):
        kind, text = blocks[k]
        if kind == "code":
            out += ["```python", text, "```", ""]
        elif kind == "equation":
            out += [text, ""]
        elif text.strip() == READ_MORE:
            out += [read_more(url, meta), "", "<!-- more -->", ""]
            read_more_done = True
        elif k + 1 < len(blocks) and blocks[k + 1] == (kind, text):
            # an image: the seed repeats its caption (alt text and caption)
            out += ['<figure class="missing-image" markdown="span">',
                    f"  [:material-image-off-outline: 原图未存档，请看原文]({url})",
                    f"  <figcaption>{text.strip()}</figcaption>",
                    "</figure>", ""]
            k += 1
        elif is_heading(text.strip()) and not (k + 1 < len(blocks) and blocks[k + 1][0] == "equation"):
            out += [f"## {text.strip()}", ""]
        else:
            out += [text.strip(), ""]
        k += 1
    if not read_more_done:
        out += [read_more(url, meta), "", "<!-- more -->", ""]
    return "\n".join(out)


def read_more(url: str, meta: dict) -> str:
    if meta["source"] == "unknown":
        return (f"[点击阅读全文...]({url})（原文地址未知：此链接指向科学空间首页）")
    return f"[点击阅读全文...]({url})"


def main() -> int:
    metas = yaml.safe_load(META.read_text(encoding="utf-8"))
    articles = split_articles()
    if len(articles) != len(metas):
        print(f"import_seeds: {len(articles)} excerpts in the seeds but {len(metas)} rows in {META}",
              file=sys.stderr)
        return 1
    POSTS.mkdir(parents=True, exist_ok=True)
    for number, (lines, meta) in enumerate(zip(articles, metas), start=1):
        target = POSTS / f"{meta['slug']}.md"
        if target.exists():
            continue
        target.write_text(render(number, meta, paragraphs(lines, number)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
