"""Every reference to documentation resolves inside the repository.

Code comments and docstrings cite ``docs/<file>.md`` and ``docs/<file>.md#<section>``;
the README and the docs link to each other with Markdown links. A citation of a file
that does not ship (the team's design brief and protocol notes live outside the
repository) or of a section that was renamed fails here, naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

#: Folders whose source files may cite docs (the docs themselves are checked below).
SOURCE_DIRS = ("app", "ui", "sip", "tests", "packaging", "scripts", "resources")
SOURCE_SUFFIXES = {".py", ".sh", ".spec", ".toml", ".yaml", ".yml", ".md", ".txt", ".cfg"}

#: Team documents that are not part of the repository (spelled in pieces so that this
#: file does not cite them itself).
OUTSIDE_DOCS = tuple(name + ".md" for name in ("DESIGN", "PROTOCOLS", "STYLE"))

DOCS_REF = re.compile(r"docs/([A-Za-z0-9_./-]+\.md)(#[A-Za-z0-9_-]+)?")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped (except
    ``-`` and ``_``), spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    """The section anchors of a Markdown file (headings outside code fences; a repeated
    heading gets ``-1``, ``-2``, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in md.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def source_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "pyproject.toml"]
    for name in SOURCE_DIRS:
        files += [
            p
            for p in sorted((REPO / name).rglob("*"))
            if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts
        ]
    return files + sorted((REPO / "docs").glob("*.md"))


def _check_target(target: Path, anchor: str | None, where: str, problems: list[str]) -> None:
    if not target.is_file():
        problems.append(f"{where}: {target.relative_to(REPO)} does not exist")
    elif anchor and anchor not in anchors(target):
        problems.append(f"{where}: no section #{anchor} in {target.relative_to(REPO)}")


def test_no_citation_of_documents_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    problems = []
    for path in source_files():
        if path.resolve() == me:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in OUTSIDE_DOCS:
                if name in line:
                    problems.append(f"{path.relative_to(REPO)}:{n}: cites {name}")
    assert not problems, "\n".join(problems)


def test_every_docs_citation_resolves() -> None:
    problems: list[str] = []
    cited = 0
    for path in source_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in DOCS_REF.finditer(line):
                cited += 1
                anchor = m.group(2)[1:] if m.group(2) else None
                where = f"{path.relative_to(REPO)}:{n}"
                _check_target(REPO / "docs" / m.group(1), anchor, where, problems)
    assert cited > 20, "the citations were not found at all"
    assert not problems, "\n".join(problems)


def test_markdown_links_between_docs_resolve() -> None:
    problems: list[str] = []
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in MD_LINK.finditer(line):
                link = m.group(1)
                if "://" in link or link.startswith("mailto:"):
                    continue
                file_part, _, anchor = link.partition("#")
                target = (page.parent / file_part).resolve() if file_part else page
                where = f"{page.relative_to(REPO)}:{n}"
                if file_part and not file_part.endswith(".md"):
                    if not target.exists():
                        problems.append(f"{where}: {file_part} does not exist")
                    continue
                _check_target(target, anchor or None, where, problems)
    assert not problems, "\n".join(problems)


def test_the_architecture_and_protocol_docs_exist() -> None:
    assert {"command-line-contract", "sessions-on-disk", "the-event-model"} <= anchors(
        REPO / "docs" / "architecture.md"
    )
    assert {"openai-realtime-ga", "gemini-live", "twilio-media-streams"} <= anchors(
        REPO / "docs" / "protocols.md"
    )


def test_slugs_follow_github() -> None:
    assert slug("Telephone line (`g711`, `g711+lossP`)") == "telephone-line-g711-g711lossp"
    assert slug("OpenAI Realtime (GA)") == "openai-realtime-ga"
    assert slug("Where a key may go (`app/providers/keyhost.py`)") == (
        "where-a-key-may-go-appproviderskeyhostpy"
    )
