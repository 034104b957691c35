"""The documentation stands on its own: every relative link and anchor in README.md and
docs/*.md resolves, and the code cites those documents, not a brief a newcomer never sees.

Anchors are computed the way GitHub renders headings (lower-case, punctuation dropped,
spaces to hyphens, `-1`, `-2` for repeats), since GitHub is where readers follow them.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MD = MarkdownIt("commonmark").enable("table")
# What a GitHub heading slug drops: everything but letters, digits, marks, `-`, `_` and space.
DROPPED = re.compile(r"[^\w\- ]", re.UNICODE)
# Citations of documents outside the repository (the product brief and its domain notes).
OUTSIDE = re.compile(r"SPEC(?:\.md|\s*§)|DOMAIN\.md|/work/shared")


def slug(text: str) -> str:
    """GitHub's anchor for a heading whose rendered text is `text`."""
    return DROPPED.sub("", text.strip().lower()).replace(" ", "-")


def _text(inline: Token) -> str:
    """A heading's text as GitHub renders it: code spans keep their content, marks go."""
    return "".join(
        child.content for child in inline.children or () if child.type in ("text", "code_inline")
    )


@cache
def tokens(page: Path) -> tuple[Token, ...]:
    """The page parsed once."""
    return tuple(MD.parse(page.read_text(encoding="utf-8")))


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every heading anchor of `page`, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    toks = tokens(page)
    for i, token in enumerate(toks):
        if token.type != "heading_open":
            continue
        base = slug(_text(toks[i + 1]))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(page: Path) -> list[str]:
    """Every link and image target on `page`."""
    out = []
    for token in tokens(page):
        for child in token.children or ():
            target = (
                child.attrs.get("href")
                if child.type == "link_open"
                else (child.attrs.get("src") if child.type == "image" else None)
            )
            if isinstance(target, str):
                out.append(target)
    return out


def broken(page: Path, target: str) -> str:
    """Why `target` (a link on `page`) does not resolve, or '' when it does (or is external)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return ""  # another site: not ours to check offline
    path = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    if not path.exists():
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return f"{target}: no such file {shown}"
    if parts.fragment and path.suffix == ".md" and unquote(parts.fragment) not in anchors(path):
        return f"{target}: {path.name} has no heading with anchor #{parts.fragment}"
    return ""


def test_anchor_rule_matches_github() -> None:
    """Spot checks against anchors GitHub gives (and this repository already links to)."""
    assert slug("What a desired file's target: may say") == "what-a-desired-files-target-may-say"
    assert slug('5. Attested state — "attested, not read"') == "5-attested-state--attested-not-read"
    assert slug("Integrity: what apply PLAN.json trusts") == "integrity-what-apply-planjson-trusts"
    assert slug("テナント と URI") == "テナント-と-uri"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    problems = [why for target in links(page) if (why := broken(page, target))]
    assert not problems, f"{page.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_readme_lists_the_documentation() -> None:
    """A newcomer finds every page of docs/ from the README."""
    listed = {
        Path(urlsplit(t).path).name
        for t in links(ROOT / "README.md")
        if urlsplit(t).path.startswith("docs/")
    }
    missing = {p.name for p in PAGES[1:]} - listed
    assert not missing, f"README.md links to no {sorted(missing)}"


def test_broken_links_are_caught(tmp_path: Path) -> None:
    """The checker itself: a missing file and a missing anchor are both reported."""
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n## Same\n\n## Same\n", encoding="utf-8")
    assert broken(page, "#same-1") == "" and broken(page, "#top") == ""
    assert "no heading" in broken(page, "#same-2")
    assert "no such file" in broken(page, "other.md")


SOURCES = sorted(
    p for p in (ROOT / "reconciler").rglob("*") if p.suffix in (".py", ".json", ".yaml", ".sql")
)


def test_code_and_docs_cite_only_documents_in_the_repository() -> None:
    """Docstrings and pages cite docs/ (contract.md, domain.md), never an outside brief."""
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in [*SOURCES, *PAGES]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "cite docs/contract.md or docs/domain.md instead:\n" + "\n".join(hits)
