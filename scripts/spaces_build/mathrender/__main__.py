"""``python -m spaces_build.mathrender stylesheet``: the CSS MathJax's SVG output needs (written to
docs/stylesheets/mathjax.css, checked by tests/test_mathrender.py)."""
from __future__ import annotations

import sys

from .worker_client import shared_worker


def main(argv: list[str]) -> int:
    if argv != ["stylesheet"]:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    sys.stdout.write(shared_worker({}).stylesheet())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
