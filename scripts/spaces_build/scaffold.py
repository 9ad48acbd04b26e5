"""Scaffold a new article: its post, a snippet folder, a module and a test file.

    spaces new SLUG --title "标题" --date YYYY-MM-DD \
        [--source https://kexue.fm/archives/NNNN] [--category 信息时代] [--tags attention,优化] \
        [--module NAME]

Every file it writes carries the marker ``SPACES-SCAFFOLD`` where the author still has work to do;
``spaces validate`` (run by the build and by CI) refuses the article until each marker is gone,
and the scaffolded test fails until it is replaced by a real one. Existing files are never overwritten.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from .project import find_root
from .validation import SCAFFOLD_MARK as MARK

from .validation import SLUG_RE

POST = """---
title: "{title}"
date: {date}
slug: {slug}
categories:
  - {category}
tags:
{tags}
source: {source}
license: CC BY-NC-SA
authors:
  - sujianlin
---

# {title}

<!-- {mark}: paste the article's excerpt here, verbatim (formulas as $...$ or \\begin{{equation}} blocks
     with a blank line before and after), then delete this comment. -->

[点击阅读全文...]({source})

<!-- more -->

## 代码实现与运行结果

<!-- {mark}: say in one or two Chinese sentences what the code shows, then delete this comment. -->
配套模块：[spaces_code/{module}.py](../code/{module}.md)。

```python title="snippets/{slug}/demo.py"
--8<-- "snippets/{slug}/demo.py"
```
"""

MODULE = '''"""{title}

Article: {source}

{mark}: name the paper the article discusses and state the key equation in LaTeX with the article's
symbols, e.g. ``$$f(x) = \\\\sum_k x^k / k!$$``; then delete this line.
"""
from __future__ import annotations

import torch


def example(x: torch.Tensor) -> torch.Tensor:
    """{mark}: replace with the article's idea (device from ``x``, randomness via ``generator``)."""
    return x
'''

SNIPPET = '''"""{mark}: what this snippet shows on the page (delete this line when written)."""
from spaces_code.runtime import make_generator, pick_device
from spaces_code.{module} import example

device = pick_device()
generator = make_generator(0, device)
x = __import__("torch").randn(3, generator=generator, device=device)
print(example(x))
'''

TEST = '''"""Tests of spaces_code.{module}: assert the article's mathematics, on CPU and CUDA."""
import pytest

from spaces_code.{module} import example


def test_property(device):
    # {mark}: replace with a test of a mathematical property that could fail (CONTRIBUTING.md, code conventions)
    pytest.fail("scaffolded test: write a real test for spaces_code.{module}")
'''


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spaces new", description=__doc__.splitlines()[0])
    ap.add_argument("slug")
    ap.add_argument("--title", required=True)
    ap.add_argument("--date", required=True, help="YYYY-MM-DD, the original publication date")
    ap.add_argument("--source", default="https://kexue.fm/", help="the article's kexue.fm address")
    ap.add_argument("--category", default="信息时代")
    ap.add_argument("--tags", default="", help="comma-separated, from taxonomy.yml")
    ap.add_argument("--module", help="module name (default: the slug with '_')")
    ap.add_argument("--root", type=Path, default=None, help="repository root (default: the folder of mkdocs.yml)")
    args = ap.parse_args(argv)

    if not SLUG_RE.match(args.slug):
        ap.error(f"slug {args.slug!r} must be lower-case words joined by '-', e.g. my-new-article")
    try:
        date = dt.date.fromisoformat(args.date)
    except ValueError:
        ap.error(f"--date {args.date!r} must be YYYY-MM-DD")
    module = args.module or args.slug.replace("-", "_")
    if not module.isidentifier():
        ap.error(f"--module {module!r} is not a Python identifier")
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    values = dict(slug=args.slug, title=args.title.replace('"', '\\"'), date=date, source=args.source,
                  category=args.category, module=module, mark=MARK,
                  tags="\n".join(f"  - {t}" for t in tags) or "  []")
    if not tags:
        values["tags"] = "  - " + MARK
    root = (args.root or find_root()).resolve()
    targets = {
        root / "docs" / "posts" / f"{args.slug}.md": POST,
        root / "snippets" / args.slug / "demo.py": SNIPPET,
        root / "spaces_code" / f"{module}.py": MODULE,
        root / "tests" / f"test_{module}.py": TEST,
    }
    existing = [p for p in targets if p.exists()]
    if existing:
        for p in existing:
            print(f"spaces new: {p.relative_to(root)} already exists — nothing was written",
                  file=sys.stderr)
        return 1
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
        print(f"created {path.relative_to(root)}")
    print(f"Now replace every {MARK} marker, then run: spaces validate && make test")
    return 0

