"""The notification kinds: their names (stable), severity, and who sends them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kissha.core.model import Event

# Stable names, documented in the README's table; a channel's `events` filter uses them.
KINDS = (
    "failover",
    "failback",
    "rotation",
    "records",
    "rollback",
    "node-down",
    "node-up",
    "family-down",
    "family-up",
    "all-down",
    "split-brain",
    "split-brain-resolved",
    "cert-expiring",
    "cert-failed",
    "error",
)
# Master changes: a run's last one leads its notice (a failover then a failback...).
MASTER_CHANGES = ("failover", "failback", "rotation")
# Off by default: the weekly swap (news every Monday is noise) and standby-only changes.
DEFAULT_EVENTS = frozenset(KINDS) - {"rotation", "records"}
# About the whole site: every node sees them, so by default only the master tells.
CLUSTER = frozenset(
    {
        "failover",
        "failback",
        "rotation",
        "records",
        "node-down",
        "node-up",
        "family-down",
        "family-up",
        "cert-expiring",
    }
)
SEVERITY = {
    "failover": "critical",
    "failback": "info",
    "rotation": "info",
    "records": "info",
    "rollback": "critical",
    "node-down": "warning",
    "node-up": "info",
    "family-down": "warning",
    "family-up": "info",
    "all-down": "critical",
    "split-brain": "critical",
    "split-brain-resolved": "info",
    "cert-expiring": "warning",
    "cert-failed": "warning",  # kissha certs: this node's own certificates, told by it
    "error": "critical",
    "reminder": "warning",
    "digest": "warning",
}
SEVERITIES = ("info", "warning", "critical")
# The state's problem kinds -> the kind that filters and sends them.
PROBLEM_KIND = {"zone-invalid": "error"}


def kind_of(event: Event) -> str | None:
    """The notification kind of a state event; None for events never notified (pin...)."""
    kind = event.kind
    if kind == "failover":  # older states: every master change a "failover" with a cause
        return str(event.fields.get("cause") or "failover")
    if kind == "zone-invalid":
        return "error"
    return kind if kind in KINDS else None
