"""Pure: when a certificate is due, from what is on disk, the CA's renewal window and now.

Rules, in order: no certificate or a placeholder -> due now; expired -> due now; the
CA's ARI window (RFC 9773) when it offers one -> a point inside the window; else when a
third of the lifetime is left. The point is moved by a spread in [0, 1) that is fixed
per node, name and certificate, so the nodes do not ask at the same moment and one
node's answer does not change from one run to the next.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

RENEW_WHEN_LEFT = 1 / 3  # of the lifetime, without a window from the CA


@dataclass(frozen=True)
class CertInfo:
    """What kissha needs to know about a certificate on disk."""

    not_before: float
    not_after: float
    issuer: str
    placeholder: bool = False
    serial: str = ""

    @property
    def lifetime(self) -> float:
        return max(0.0, self.not_after - self.not_before)


@dataclass(frozen=True)
class Window:
    """A renewal window the CA suggested (ARI), in epoch seconds."""

    start: float
    end: float


@dataclass(frozen=True)
class Due:
    """Whether to ask now, from when, and why (for people)."""

    due: bool
    at: float | None  # when it is (or was) due; None: no certificate at all
    reason: str


def spread_of(node: str, name: str, serial: str) -> float:
    """A stable number in [0, 1) for this node, name and certificate."""
    digest = hashlib.sha256(f"{node}\0{name}\0{serial}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def due_at(info: CertInfo, window: Window | None, spread: float, spread_seconds: float) -> float:
    """When a real certificate should be renewed.

    With a window: a point inside it chosen by ``spread`` (RFC 9773 asks for a random
    point). Without: when a third of the lifetime is left, moved earlier by up to
    ``spread_seconds`` (but never by more than a tenth of the lifetime)."""
    if window is not None and window.end > window.start:
        return window.start + spread * (window.end - window.start)
    if window is not None:
        return window.start
    at = info.not_after - info.lifetime * RENEW_WHEN_LEFT
    return at - spread * min(spread_seconds, info.lifetime / 10)


def decide(
    info: CertInfo | None,
    window: Window | None,
    now: float,
    spread: float,
    spread_seconds: float,
    retry_at: float | None = None,
    force: bool = False,
) -> Due:
    """Whether to ask the CA for this name now.

    ``retry_at``: the CA asked to wait (Retry-After) or the last attempt failed; nothing
    is asked before then, except with ``force``."""
    if info is None:
        due = Due(True, None, "no certificate")
    elif info.placeholder:
        due = Due(True, None, "placeholder")
    elif info.not_after <= now:
        due = Due(True, info.not_after, "expired")
    else:
        at = due_at(info, window, spread, spread_seconds)
        source = "in the CA's renewal window" if window is not None else "a third of its life left"
        due = Due(at <= now, at, source if at <= now else f"not before {_iso(at)}")
    if force:
        return Due(True, due.at, "forced")
    if due.due and retry_at is not None and now < retry_at:
        return Due(False, due.at, f"{due.reason}; waiting until {_iso(retry_at)} after an error")
    return due


def backoff(failures: int, retry_after: float | None, base: float = 3600.0) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: the CA's Retry-After
    when it gave one, else an hour doubling up to a day."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, 7 * 86400.0)
    # The exponent capped: a count from a damaged certs.json could overflow a float.
    return min(base * 2.0 ** min(max(0, failures - 1), 32), 86400.0)


def _iso(ts: float) -> str:
    from kissha.core.model import iso

    return str(iso(ts))
