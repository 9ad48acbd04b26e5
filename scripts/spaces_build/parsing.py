"""The one parser of the archive's Markdown: front matter, fenced blocks, snippet includes, formulas.

Used by the engine, validation, the tests and the benchmarks alike, so that they never disagree on
what a post says. Front matter is YAML between a ``---`` line and a ``---`` (or ``...``) line, as
MkDocs reads it (``mkdocs.utils.meta``); its line numbers come from the YAML nodes' marks.
"""
from __future__ import annotations

import dataclasses
import re

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# MkDocs' own rule (mkdocs.utils.meta.YAML_RE), anchored at the start of the file.
FRONT_MATTER = re.compile(r"\A-{3}[ \t]*\n(?P<yaml>.*?\n)?(?:\.{3}|-{3})[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclasses.dataclass
class FrontMatter:
    """A post's front matter: ``data`` (a dict, empty when absent or invalid) and where things are."""

    data: dict
    present: bool  # the file opens a front-matter block that closes
    text: str  # the YAML source ("" without front matter)
    body_line: int  # 1-based line where the body starts
    error: yaml.YAMLError | None = None  # set when the YAML does not parse (then data is {})
    node: yaml.Node | None = None
    mapping: bool = True  # False when the YAML parses to something else than a mapping

    def line_of(self, key: str, item=None) -> int:
        """1-based file line of ``key:``, or of ``item`` in its list; 1 when not found."""
        node = self.node
        if not isinstance(node, yaml.MappingNode):
            return 1
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) != key:
                continue
            if item is not None and isinstance(value_node, yaml.SequenceNode):
                for entry in value_node.value:
                    if getattr(entry, "value", None) == str(item):
                        return entry.start_mark.line + 2
            return key_node.start_mark.line + 2
        return 1

    @property
    def error_line(self) -> int:
        mark = getattr(self.error, "problem_mark", None)
        return mark.line + 2 if mark is not None else 1


def front_matter(text: str) -> FrontMatter:
    """Parse the front matter of a Markdown file (never raises on bad YAML: see ``error``)."""
    m = FRONT_MATTER.match(text)
    if not m:
        return FrontMatter({}, False, "", 1)
    source = m.group("yaml") or ""
    head = text[:m.end()]
    body_line = head.count("\n") + (1 if head.endswith("\n") else 2)
    try:
        node = yaml.compose(source, Loader=_Loader)
        data = yaml.load(source, Loader=_Loader)
    except yaml.YAMLError as exc:
        return FrontMatter({}, True, source, body_line, error=exc)
    if data is not None and not isinstance(data, dict):
        return FrontMatter({}, True, source, body_line, mapping=False)
    return FrontMatter(data or {}, True, source, body_line, node=node)


def split(text: str) -> tuple[dict, str]:
    """(front matter data, body) of a Markdown file."""
    m = FRONT_MATTER.match(text)
    return front_matter(text).data, text[m.end():] if m else text


# --------------------------------------------------------------------------------------------------
# Fenced blocks and snippet includes

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
FENCE_LINE = re.compile(r"^\s*(```+|~~~+)")  # a line that opens or closes a fence
# A pymdownx.snippets include line of a whole snippets/**/*.py file
SNIPPET_INCLUDE = re.compile(r"""^[ \t]*-+8<-+[ \t]+(["'])(?P<path>snippets/[^"':\n]+?\.py)\1[ \t]*$""")
# Any pymdownx.snippets include line (validation checks that each points at a file)
INCLUDE = re.compile(r"""^[ \t]*-+8<-+[ \t]+(["'])(?P<path>[^"'\n]+)\1[ \t]*$""")


@dataclasses.dataclass
class Fence:
    """A fenced block: 0-based indices of its opening and closing lines (``close`` = len(lines) when
    it is never closed), its indentation, fence and info string."""

    open: int
    close: int
    indent: str
    fence: str
    info: str


def fences(lines: list[str]) -> list[Fence]:
    """Every fenced block of a document, in order (a fence closes with the same character, at least as
    long; an unclosed fence runs to the end)."""
    found = []
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            j += 1
        found.append(Fence(i, j, m.group("indent"), fence, m.group("info")))
        i = j + 1
    return found


@dataclasses.dataclass
class Include:
    """A fenced block of a page whose body includes one snippet; ``close`` is its closing line index."""

    snippet: str  # "snippets/<slug>/<name>.py"
    open: int  # 0-based index of the opening fence line
    close: int  # 0-based index of the closing fence line
    indent: str


def find_includes(markdown: str) -> list[Include]:
    """Every closed fenced block whose body is exactly one ``--8<-- "snippets/....py"`` line."""
    lines = markdown.split("\n")
    found = []
    for block in fences(lines):
        if block.close >= len(lines):
            break
        body = [line for line in lines[block.open + 1:block.close] if line.strip()]
        if len(body) == 1:
            inc = SNIPPET_INCLUDE.match(body[0])
            if inc:
                found.append(Include(inc.group("path"), block.open, block.close, block.indent))
    return found


def outside_code(lines: list[str], start: int = 1):
    """(1-based number, line) of each line from ``start`` on that is not inside a fenced block (fence
    lines themselves are yielded: they may carry includes)."""
    inside: set[int] = set()
    for block in fences(lines[start - 1:]):
        inside.update(range(block.open + 1, block.close))
    for index, line in enumerate(lines[start - 1:]):
        if index not in inside:
            yield index + start, line


# --------------------------------------------------------------------------------------------------
# Formulas

# The posts' formula delimiters (the same as tools/check_fidelity.py)
MATH = re.compile(
    r"(\$\$.+?\$\$|\$[^$]+?\$|\\begin\{equation\}.+?\\end\{equation\}|\\\[.+?\\\]|\\\(.+?\\\))",
    re.S,
)
FENCED = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}).*?^(?P=indent)(?P=fence)[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)


def prose(body: str) -> str:
    """Markdown without code (fenced blocks, inline code) and HTML comments."""
    return COMMENT.sub("", INLINE_CODE.sub("", FENCED.sub("", body)))


def formulas(body: str) -> list[str]:
    """Every formula of a post's Markdown body, in order."""
    return MATH.findall(prose(body))


# --------------------------------------------------------------------------------------------------
# Snippet files

TIMING_MARK = re.compile(r"^\s*#\s*spaces:\s*timing-dependent\b", re.IGNORECASE)
TIMING_SCAN_LINES = 10


def is_timing_dependent(source: str) -> bool:
    """``# spaces: timing-dependent`` in the first lines: the snippet's output measures time."""
    return any(TIMING_MARK.match(line) for line in source.splitlines()[:TIMING_SCAN_LINES])
