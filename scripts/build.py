"""Execute what is stale, then build (or serve) the site: a thin wrapper of ``spaces build``.

    python scripts/build.py [--site-dir DIR] [--jobs N] [--device cpu|cuda|auto] [--timeout SECONDS]
                            [--keep-going] [--serve] [--dev-addr HOST:PORT] [--no-strict] [--quiet]

Everything happens in the installed package ``spaces_build`` (``pip install -e .``); see ``spaces --help``.
"""
import sys

from spaces_build.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
