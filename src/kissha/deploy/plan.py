"""What a deploy would change on one node: pure, from rendered files and what is there."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from kissha.render.engine import Rendered


@dataclass(frozen=True)
class Change:
    file: Rendered
    old: str | None  # None: the file does not exist yet
    new: str  # the whole file as it will be ("lines" files: the old one plus lines)

    @property
    def path(self) -> str:
        return self.file.path

    def diff(self) -> str:
        old = [] if self.old is None else self.old.splitlines(keepends=True)
        lines = difflib.unified_diff(
            old,
            self.new.splitlines(keepends=True),
            f"{self.file.node}:{self.path}" if self.old is not None else "/dev/null",
            f"{self.file.node}:{self.path}",
        )
        return "".join(
            x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines
        )


def merged(old: str | None, lines: str) -> str:
    """A "lines" file: the lines it already has, plus those of ``lines`` it lacks, in order."""
    text = old or ""
    have = set(text.splitlines())
    missing = [line for line in lines.splitlines() if line not in have]
    if not missing:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "\n".join(missing) + "\n"


def plan(files: list[Rendered], current: dict[str, str | None]) -> list[Change]:
    """The files whose content differs from what the node has (``current``: path to text)."""
    changes: list[Change] = []
    for f in files:
        old = current.get(f.path)
        new = merged(old, f.content) if f.spec.kind == "lines" else f.content
        if new != old:
            changes.append(Change(f, old, new))
    return changes


def services(changes: list[Change]) -> list[str]:
    """The services to reload, once each, in the order their files come."""
    out: list[str] = []
    for c in changes:
        out += [s for s in c.file.spec.services if s not in out]
    return out
