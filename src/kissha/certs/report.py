"""A certificates run's report, as data: what happened to each name, the hooks run.

The run (certs/run.py) fills it; the outputs (the command's text and --json, the
after-run hooks and notices) read it from here, so none of them imports the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kissha.exits import Exit


@dataclass(frozen=True)
class NameResult:
    """What happened to one name in one run."""

    name: str
    kind: str
    action: str  # obtained | renewed | placeholder | unchanged | skipped | failed | would-*
    reason: str
    due_at: float | None = None
    not_after: float | None = None
    issuer: str = ""
    error: str = ""
    written: bool = False  # files changed in this run (a certificate or a placeholder)


@dataclass
class Report:
    """One run, for the CLI's text and --json."""

    node: str
    strategy: str
    directory: str
    dry_run: bool
    names: list[NameResult] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)  # commands run, in order
    hook_errors: list[str] = field(default_factory=list)
    split_brain: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(n.written for n in self.names)

    @property
    def failed(self) -> list[NameResult]:
        return [n for n in self.names if n.action == "failed"]

    def exit_code(self) -> int:
        if self.failed or self.hook_errors:
            return Exit.ROLLED_BACK  # a name or a hook failed (CertsFailed's code)
        if self.split_brain and any("split brain (" in n.reason for n in self.names):
            return Exit.CRITICAL  # a split brain held back the site names
        return Exit.CHANGED if self.changed else Exit.OK

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changed"] = self.changed
        return data
