"""Generate a synthetic archive of N articles, to measure how the build scales (issue 8).

    python benchmarks/synthetic.py DEST --articles N [--modules M]

DEST (which must not exist) becomes a complete project that builds with ``python scripts/build.py``
and passes ``scripts/validate.py``: the real ``mkdocs.yml``, hooks, scripts, theme overrides,
``taxonomy.yml`` and the non-post pages are copied from this repository; the rest is generated:

- ``docs/posts/synthetic-NNNN.md``: N articles, each with a unique date (one a day), one category and
  three tags from ``taxonomy.yml``, an excerpt with inline formulas, a numbered equation and an
  ``\\eqref`` to it, and one included snippet after ``<!-- more -->``;
- ``snippets/synthetic-NNNN/demo.py``: one small snippet per article (pure Python, no torch) that
  imports a tiny module and prints one line;
- ``spaces_code/synth_KK.py``: M tiny modules (default N/10, so every module has about ten users),
  each citing the first article that uses it, and ``tests/test_synth_KK.py`` testing each.

Everything is a function of N and M only (no randomness, no clock): two runs give the same tree.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# what a project needs besides its articles (the same files the real archive builds with)
FILES = ("mkdocs.yml", "taxonomy.yml", "docs/index.md", "docs/tags.md", "docs/about.md",
         "docs/.authors.yml")
FOLDERS = ("overrides", "docs/assets", "docs/javascripts", "docs/stylesheets")
FIRST_DATE = dt.date(2001, 1, 1)
SOURCE = "https://kexue.fm/archives/{}"
FIRST_ARCHIVE_NUMBER = 900000  # far above the real archive's numbers: never one of its addresses

POST = """---
title: "合成文章 {i}：巴塞尔级数的部分和"
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

# 合成文章 {i}：巴塞尔级数的部分和

这是用来测量构建规模的第 {i} 篇合成文章。考虑级数 $\\sum_{{k=1}}^{{\\infty}} \\frac{{1}}{{k^2}}$，
它的部分和 $S_n = \\sum_{{k=1}}^{{n}} \\frac{{1}}{{k^2}}$ 单调递增且有上界，于是

\\begin{{equation}}
\\lim_{{n\\to\\infty}} S_n = \\frac{{\\pi^2}}{{6}} \\approx 1.644934\\label{{eq:basel-{i}}}
\\end{{equation}}

而误差满足 $\\frac{{\\pi^2}}{{6}} - S_n < \\frac{{1}}{{n}}$。式$\\eqref{{eq:basel-{i}}}$ 在 $n={n}$ 时的误差不超过
$$\\frac{{1}}{{{n}}} \\approx {bound:.6f}.$$

[点击阅读全文...]({source})

<!-- more -->

## 代码实现与运行结果

下面的代码用 `{module}.partial_sum` 计算 $S_{{{n}}}$。配套模块：[spaces_code/{module}.py](../code/{module}.md)。

```python title="snippets/{slug}/demo.py"
--8<-- "snippets/{slug}/demo.py"
```
"""

SNIPPET = '''"""Synthetic article {i}: the partial sum S_{n} of 1/k^2 and its distance to pi^2/6."""
import math

from spaces_code.{module} import partial_sum

s = partial_sum({n})
print(f"S_{n} = {{s:.8f}}, pi^2/6 - S_{n} = {{math.pi ** 2 / 6 - s:.8f}} < 1/{n}")
'''

MODULE = '''r"""{title}

Article: {source}

A tiny module of the synthetic archive (benchmarks/synthetic.py): the partial sums of the Basel series,
$$S_n = \\sum_{{k=1}}^{{n}} \\frac{{1}}{{k^2}}.$$
"""
from __future__ import annotations


def partial_sum(n: int) -> float:
    r"""$S_n = \\sum_{{k=1}}^{{n}} 1/k^2$, summed from the smallest term up (less rounding error)."""
    return sum(1.0 / (k * k) for k in range(n, 0, -1))
'''

TEST = '''"""Tests of spaces_code.{module} (synthetic archive)."""
import math

from spaces_code.{module} import partial_sum


def test_partial_sums_approach_pi_squared_over_six_within_one_over_n():
    for n in (1, 10, 100):
        gap = math.pi ** 2 / 6 - partial_sum(n)
        assert 0 < gap < 1 / n
'''


def slug_of(i: int) -> str:
    return f"synthetic-{i:04d}"


def module_of(i: int, modules: int) -> str:
    return f"synth_{i % modules:02d}"


def generate(dest: Path, articles: int, modules: int | None = None, repo: Path = REPO) -> Path:
    """Write the synthetic project into ``dest`` (which must not exist) and return it."""
    if articles < 1:
        raise ValueError("articles must be at least 1")
    modules = max(1, min(articles, modules or articles // 10))
    dest = Path(dest)
    dest.mkdir(parents=True)
    for rel in FILES:
        _copy(repo / rel, dest / rel)
    for rel in FOLDERS:
        shutil.copytree(repo / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for pattern in ("scripts/*.py", "scripts/hooks/*.py"):
        for path in sorted(repo.glob(pattern)):
            _copy(path, dest / path.relative_to(repo))
    taxonomy = yaml.safe_load((repo / "taxonomy.yml").read_text(encoding="utf-8"))
    categories, tags = taxonomy["categories"], taxonomy["tags"]

    first_user: dict[str, int] = {}
    for i in range(1, articles + 1):
        slug, module = slug_of(i), module_of(i, modules)
        first_user.setdefault(module, i)
        n = 10 + i % 90
        chosen = [tags[(i * 7 + j * 13) % len(tags)] for j in range(3)]
        values = dict(i=i, n=n, slug=slug, module=module, bound=1 / n,
                      date=FIRST_DATE + dt.timedelta(days=i - 1),
                      category=categories[i % len(categories)],
                      tags="\n".join(f"- {t}" for t in dict.fromkeys(chosen)),
                      source=SOURCE.format(FIRST_ARCHIVE_NUMBER + i))
        _write(dest / "docs" / "posts" / f"{slug}.md", POST.format(**values))
        _write(dest / "snippets" / slug / "demo.py", SNIPPET.format(**values))

    _write(dest / "spaces_code" / "__init__.py", '"""Companion code of the synthetic archive."""\n')
    for module, i in sorted(first_user.items()):
        title = f"合成文章 {i}：巴塞尔级数的部分和"
        _write(dest / "spaces_code" / f"{module}.py",
               MODULE.format(title=title, source=SOURCE.format(FIRST_ARCHIVE_NUMBER + i)))
        _write(dest / "tests" / f"test_{module}.py", TEST.format(module=module))
    return dest


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="folder to create (must not exist)")
    ap.add_argument("--articles", "-n", type=int, required=True)
    ap.add_argument("--modules", "-m", type=int, default=None, help="default: articles / 10")
    args = ap.parse_args(argv)
    if args.dest.exists():
        ap.error(f"{args.dest} already exists")
    generate(args.dest, args.articles, args.modules)
    print(f"synthetic archive of {args.articles} articles written to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
