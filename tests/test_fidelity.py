"""Every paragraph and formula of the seeds (sources/seeds/, the provenance copy) is in docs/."""
from __future__ import annotations

import re
import subprocess
import sys

from site_helpers import DOCS, ROOT, SEEDS

EXPECTED = 259  # paragraphs of the five listing pages, chrome left out (tools/check_fidelity.py)


def test_seeds_are_kept_in_the_repository():
    seeds = sorted(SEEDS.glob("*.txt"))
    assert len(seeds) == 5, seeds


def test_fidelity_259_of_259():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_fidelity.py"), str(DOCS), "--seeds", str(SEEDS)],
        capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"^fidelity: (\d+)/(\d+) paragraphs kept$", out, re.M)
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == (EXPECTED, EXPECTED), out
