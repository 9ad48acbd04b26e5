"""Two clean builds must give the same site: a thin wrapper of ``spaces check-reproducible``
(spaces_build.reproducible)."""
import sys

from spaces_build.cli import main

if __name__ == "__main__":
    sys.exit(main(["check-reproducible", *sys.argv[1:]]))
