"""Execute what is stale, then build (or serve) the site: the one command of this project.

    python scripts/build.py [--site-dir DIR] [--jobs N] [--device cpu|cuda|auto] [--timeout SECONDS]
                            [--keep-going] [--serve] [--dev-addr HOST:PORT] [--no-strict] [--quiet]

The work happens in the MkDocs hook ``scripts/hooks/snippets.py`` (so a plain ``mkdocs build`` or
``mkdocs serve`` never publishes stale output either); this script passes its options to the hook as
``SPACES_*`` environment variables and runs MkDocs in this process, from the repository root
(pymdownx.snippets resolves ``snippets/...`` includes against the working directory).

Validation (``scripts/validate.py``) comes first: a malformed front matter, a missing title or date,
an unknown category or tag, a duplicate slug, a missing snippet include ... fail the build with every
problem listed as ``path:line: message`` before any snippet runs.

Exit status: 0 on success; 1 when validation finds a problem, when a snippet fails or times out (the message names the snippet path,
its article, the line and the exception) or the strict build has warnings.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site-dir", default=None, help="output directory (default: site/)")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                        help="snippets run in parallel (default: number of cores)")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                        help="device the snippets run on (default auto: cuda when available)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per snippet before its process group is killed (default 300)")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every snippet and report all failures, instead of stopping at the first")
    parser.add_argument("--serve", action="store_true",
                        help="serve the site with live reload (rebuilds on edits of docs, snippets, spaces_code)")
    parser.add_argument("--dev-addr", default=None, help="HOST:PORT for --serve (default from mkdocs.yml)")
    parser.add_argument("--config-file", "-f", default=str(ROOT / "mkdocs.yml"))
    parser.add_argument("--no-strict", action="store_true", help="do not fail on MkDocs warnings")
    parser.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.update({
        "SPACES_JOBS": str(args.jobs),
        "SPACES_DEVICE": args.device,
        "SPACES_TIMEOUT": str(args.timeout),
        "SPACES_KEEP_GOING": "1" if args.keep_going else "0",
        "SPACES_SERVE": "1" if args.serve else "0",
    })
    config_file = str(Path(args.config_file).resolve())
    site_dir = str(Path(args.site_dir).resolve()) if args.site_dir else None
    os.chdir(Path(config_file).parent)

    from mkdocs.__main__ import cli  # sets up MkDocs' logging exactly like the `mkdocs` command

    if args.serve:
        mk_args = ["serve", "-f", config_file]
        if args.dev_addr:
            mk_args += ["--dev-addr", args.dev_addr]
    else:
        mk_args = ["build", "-f", config_file]
        if site_dir:
            mk_args += ["--site-dir", site_dir]
    if not args.no_strict and not args.serve:
        # Serving stays lenient: a failing snippet shows its traceback on its page while you edit.
        mk_args.append("--strict")
    if args.quiet:
        mk_args.append("--quiet")
    start = time.perf_counter()
    try:
        cli.main(args=mk_args, prog_name="mkdocs", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if not args.serve and not args.quiet:
        verdict = "done" if code == 0 else "FAILED"
        print(f"scripts/build.py: {verdict} in {time.perf_counter() - start:.1f} s "
              f"(site: {site_dir or Path(config_file).parent / 'site'})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
