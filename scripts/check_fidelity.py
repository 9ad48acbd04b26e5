"""Check that the archive keeps every paragraph of the original article text: a thin wrapper of
``spaces_build.fidelity`` (a copy of the shared tools' check_fidelity.py).

Usage: check_fidelity.py [DOCS_DIR] [--seeds SEEDS_DIR] [--verbose]
"""
import sys

from spaces_build.fidelity import main

if __name__ == "__main__":
    sys.exit(main())
