"""Content-addressed cache of rendered pages of formulas.

One entry per page of formulas: the key hashes everything the output depends on, namely the
formulas of the page in order (which is also the numbering context: equation numbers, labels and
\\newcommand definitions come from the formulas before), the renderer's options (macros, packages,
output settings) and the renderer's fingerprint (MathJax's version and the worker's code). A warm
build finds every page here and never starts node.

Entries are files ``<dir>/<key[:2]>/<key>.json``, written atomically (temporary file + rename), so a
build killed at any moment leaves either no entry or a whole one. Failed renderings are never stored.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rendered:
    """The rendered formulas of one page (HTML, in order) and the glyph definitions they use."""

    items: tuple[str, ...]
    defs: str

    def to_json(self) -> str:
        return json.dumps({"items": list(self.items), "defs": self.defs}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Rendered":
        data = json.loads(text)
        return cls(items=tuple(data["items"]), defs=data["defs"])


def cache_key(items: list[dict], options: dict, fingerprint: str) -> str:
    blob = json.dumps({"renderer": fingerprint, "options": options, "items": items},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RenderCache:
    """Entries on disk plus a small in-memory layer (a page's excerpt is rendered once per listing)."""

    def __init__(self, directory: str | os.PathLike | None):
        self.directory = Path(directory) if directory else None
        self._memory: dict[str, Rendered] = {}
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Rendered | None:
        found = self._memory.get(key)
        if found is None and self.directory is not None:
            try:
                found = Rendered.from_json(self.path(key).read_text(encoding="utf-8"))
            except (OSError, ValueError, KeyError, TypeError):
                found = None   # absent, or damaged by hand: rendered again and rewritten
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._memory[key] = found
        return found

    def put(self, key: str, value: Rendered) -> None:
        self._memory[key] = value
        if self.directory is None:
            return
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(value.to_json())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
