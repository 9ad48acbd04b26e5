"""What a snippet printed and drew, made fit to publish: output kept head and tail, read as a terminal
shows it, machine paths made relative; figures refused when they carry scripts or external references."""
from __future__ import annotations

import re
import threading
from collections import deque

OUTPUT_HEAD = 48 * 1024  # bytes of output kept from the start ...
OUTPUT_TAIL = 16 * 1024  # ... and from the end, when a snippet prints more than both together


class Capture(threading.Thread):
    """Reads a child's combined stdout/stderr, keeping its head and tail and counting the rest."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.total = 0

    def run(self):
        while True:
            chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            room = OUTPUT_HEAD - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_len += len(chunk)
                while self.tail_len - len(self.tail[0]) >= OUTPUT_TAIL:
                    self.tail_len -= len(self.tail.popleft())

    def parts(self) -> tuple[bytes, bytes, bool]:
        """(head, tail, truncated); without truncation everything is in head."""
        tail = b"".join(self.tail)
        if len(self.head) + len(tail) == self.total and len(tail) <= OUTPUT_TAIL:
            return bytes(self.head) + tail, b"", False
        return bytes(self.head), tail[-OUTPUT_TAIL:], True


# What a figure (an SVG served from the site, and inlined into the notebook pages) may not contain.
# (Attributes are matched inside tags only: matplotlib copies the plot's texts into <!-- comments -->.)
UNSAFE_SVG = re.compile(rb"<\s*(?:script|foreignObject|iframe|embed|object)\b|<[a-z][^>]*\son[a-z]+\s*="
                        rb"|<[a-z][^>]*(?<![a-z])href\s*=\s*[\"']\s*(?!#|data:image/(?:png|jpeg|gif);)"
                        rb"|url\(\s*[\"']?\s*(?:[a-z]+:|//)",
                        re.IGNORECASE)


def excerpt(data: bytes, start: int, end: int) -> str:
    """The offending part of a figure, on one line: the match and what follows it."""
    text = data[start:min(end, start + 60) + 40].decode("utf-8", errors="replace")
    return " ".join(text.split())


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def decode(data: bytes, replacements: list[tuple[str, str]]) -> str:
    """Output as a terminal would show it: colours dropped, a line redrawn after ``\\r`` (progress
    bars) keeps its last state, and the machine's paths become repository-relative."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if "\x1b" in text:
        text = ANSI_ESCAPE.sub("", text)
    if "\r" in text:
        text = "\n".join(_last_redraw(line) for line in text.split("\n"))
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def _last_redraw(line: str) -> str:
    parts = [part for part in line.split("\r") if part]
    return parts[-1] if parts else ""
