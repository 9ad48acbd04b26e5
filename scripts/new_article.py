"""Scaffold a new article: a thin wrapper of ``spaces new`` (spaces_build.scaffold)."""
import sys

from spaces_build.cli import main

if __name__ == "__main__":
    sys.exit(main(["new", *sys.argv[1:]]))
