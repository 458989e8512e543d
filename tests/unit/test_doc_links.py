"""The Markdown documents' relative links and #anchors point at something that exists.

README.md and docs/*.md link to each other's sections (``docs/benchmarks.md#daemon``)
and to files of the repository (``examples/systemd/``). A heading renamed or a file
moved breaks them silently; this holds them, with GitHub's rules for heading anchors
(lower case; punctuation but ``-`` and ``_`` dropped; spaces become ``-``; a repeated
heading gets ``-1``, ``-2``...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~)")


def _prose(path: Path) -> list[str]:
    """The document's lines outside fenced code blocks."""
    out, fenced = [], False
    for line in path.read_text().splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"`|\*\*?|__", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        a = anchor(m.group(1))
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out


def test_github_anchor_rules() -> None:
    assert anchor("Performance (issue 13)") == "performance-issue-13"
    assert anchor("`[notify]`") == "notify"
    assert anchor("Watching it: `kissha status`") == "watching-it-kissha-status"
    heading = "2026-11-30: `bench/run --runs 20`, 2 CPUs"
    assert anchor(heading) == "2026-11-30-benchrun---runs-20-2-cpus"


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Title\n\n[ok](#title) [ok](other.md#same-1) [ok](https://example.org/x#y)\n"
        "[gone](missing.md) [no anchor](other.md#same-2) [here](#nothing)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert broken_links(doc, tmp_path) == [
        "missing.md: no missing.md",
        "other.md#same-2: no heading with that anchor",
        "#nothing: no heading with that anchor",
    ]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for line in _prose(path):
        for target in _LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file, _, fragment = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{target}: no {dest.relative_to(root.resolve())}")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{target}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    assert broken_links(path) == []
