"""Check every article, snippet, module and test: a thin wrapper of ``spaces validate`` (spaces_build.validation)."""
import sys

from spaces_build.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
