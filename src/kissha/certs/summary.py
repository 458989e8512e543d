"""What the last ``kissha certs`` run recorded per name, for status, the page and metrics.

Reads certs.json only (no cryptography, no network): outputs that run every minute can
afford it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.core.model import iso

RECORDS = "certs.json"


@dataclass(frozen=True)
class CertRow:
    name: str
    kind: str
    issuer: str
    not_after: float | None
    due_at: float | None
    error: str
    checked: float | None  # when the last run looked at it


def load(state_dir: Path) -> list[CertRow]:
    """Shape-checked (kissha.certs.records): a damaged certs.json shows as fewer rows,
    never a crash; the next kissha certs run sets it aside and says so."""
    from kissha.certs import records

    names: dict[str, dict[str, Any]] = records.load(state_dir, readonly=True)[0]["names"]
    return [
        CertRow(
            name=name,
            kind=str(r.get("kind", "")),
            issuer=str(r.get("issuer", "")),
            not_after=r.get("not_after"),
            due_at=r.get("due_at"),
            error=str(r.get("error", "")),
            checked=r.get("checked"),
        )
        for name, r in sorted(names.items())
        if "checked" in r
    ]


def _when(ts: float | None) -> str:
    return iso(ts) if ts else "-"


def text(rows: list[CertRow]) -> list[str]:
    if not rows:
        return ["", "certificates: none recorded (kissha certs has not run)"]
    out = ["", "certificates (as of the last kissha certs run):"]
    width = max(len(r.name) for r in rows)
    for r in rows:
        line = f"  {r.name:<{width}}  expires {_when(r.not_after)}  due {_when(r.due_at)}"
        out.append(f"{line}  {r.issuer or '-'}")
        if r.error:
            out.append(f"  {'':<{width}}  ! last error: {r.error}")
    return out


def as_json(rows: list[CertRow]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "issuer": r.issuer,
            "not_after": _when(r.not_after) if r.not_after else None,
            "due": _when(r.due_at) if r.due_at else None,
            "error": r.error or None,
            "checked": _when(r.checked) if r.checked else None,
        }
        for r in rows
    ]


def html_section(rows: list[CertRow]) -> str:
    cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(v)}</td>"
            for v in (r.name, r.issuer or "-", _when(r.not_after), _when(r.due_at), r.error or "")
        )
        + "</tr>"
        for r in rows
    )
    return (
        "<h2>Certificates</h2><table><tr><th>name</th><th>issuer</th><th>expires</th>"
        f"<th>due</th><th>last error</th></tr>{cells}</table>"
    )


def metrics(rows: list[CertRow]) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
    """(name, type, help, [(name label, value)]) families for the metrics module."""
    return [
        (
            "kissha_cert_expiry_timestamp_seconds",
            "gauge",
            "When each name's certificate expires (absent: none yet, or a placeholder).",
            [(r.name, r.not_after) for r in rows if r.not_after],
        ),
        (
            "kissha_cert_due_timestamp_seconds",
            "gauge",
            "When kissha certs will renew each name's certificate.",
            [(r.name, r.due_at) for r in rows if r.due_at],
        ),
        (
            "kissha_cert_error",
            "gauge",
            "1 when the last attempt to obtain the name's certificate failed.",
            [(r.name, 1.0 if r.error else 0.0) for r in rows],
        ),
    ]
