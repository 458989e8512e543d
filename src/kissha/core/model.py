"""Frozen value types shared by the pure core and the edges."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["ipv4", "ipv6"]
FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
RRTYPE_FAMILY: dict[str, Family] = {"A": "ipv4", "AAAA": "ipv6"}


def iso(ts: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time: kissha's one time format for people."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True)
class Node:
    """A server that can be master or standby."""

    name: str
    fqdn: str
    ipv4: str | None = None
    ipv6: str | None = None
    probes: tuple[str, ...] | None = None  # the names of the probes it runs; None: all

    def runs(self, probe: str) -> bool:
        return self.probes is None or probe in self.probes

    def address(self, family: Family) -> str | None:
        return self.ipv4 if family == "ipv4" else self.ipv6

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(f for f in FAMILIES if self.address(f))


@dataclass(frozen=True)
class ProbeSpec:
    """One health check applied to its nodes and each of their address families."""

    name: str
    kind: str  # https | http | gemini | tcp | dns | smtp
    port: int
    path: str = "/index.txt"
    expect: str = "Welcome to {fqdn}"  # "" checks no body text
    ca_file: str | None = None
    required: bool = True
    tls: str = "ca"  # gemini: "tofu" | "ca" | "pinned"; https always verifies ("ca")
    fingerprints: tuple[tuple[str, str], ...] = ()  # pinned: (node name, "sha256:HEX")
    zone: str | None = None  # dns: the zone whose SOA is asked


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe of one node over one address family."""

    node: str
    probe: str
    family: Family
    address: str
    ok: bool
    detail: str
    required: bool = True
    latency_ms: float | None = None
    attempts: int = 1
    cert_not_after: float | None = None
    warning: str | None = None  # a passing probe's concern, e.g. a certificate near expiry


@dataclass(frozen=True)
class NodeHealth:
    """A node's debounced health, carried across runs."""

    up: bool = True
    fail_streak: int = 0
    ok_streak: int = 0


@dataclass(frozen=True)
class Roles:
    """Who the marked records point at: ``order`` is the full preference order."""

    master: str
    standby: str
    order: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pin:
    """A manual override of rotation, optionally until a time (epoch seconds)."""

    node: str
    until: float | None = None

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class Decision:
    """What one run decided: ``roles`` is None when the current records must stay."""

    roles: Roles | None
    health: dict[str, NodeHealth] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    preferred: tuple[str, ...] = ()


# The kinds of events kissha writes (a state file may hold others: older or newer
# versions); notify/kinds.py says which are told.
EventKind = Literal[
    "node-down",
    "node-up",
    "family-down",
    "family-up",
    "failover",
    "failback",
    "rotation",
    "records",
    "rollback",
    "all-down",
    "split-brain",
    "split-brain-resolved",
    "cert-expiring",
    "cert-failed",
    "cert-ok",
    "zone-invalid",
    "error",
    "pin",
    "unpin",
    "unpinned",
]
EVENT_MEMBERS = ("id", "time", "kind", "message")


@dataclass(frozen=True)
class Event:
    """One entry of the state's history: what happened and when. ``fields`` holds the
    members its kind adds (node, family, from, to, cause, reason, zones, standby...);
    state.json stores them beside the four of every event."""

    id: int  # only grows, so notifications know what they have sent (0: before ids)
    time: float
    kind: str  # an EventKind when kissha wrote it; any text read from a state file
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "kind": self.kind,
            "message": self.message,
            **self.fields,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        """From an event's JSON object, whose shape the caller checked (engine/state.py)."""
        return cls(
            int(data.get("id", 0)),
            data["time"],  # as written: an int stays an int when the state is saved again
            str(data["kind"]),
            str(data["message"]),
            {k: v for k, v in data.items() if k not in EVENT_MEMBERS},
        )


@dataclass(frozen=True)
class Problem:
    """A problem open since ``since`` (every node down, a node down, a certificate close
    to expiry, a zone that fails validation, an error): its event was told when it
    opened, reminders follow while it stays open. ``fields`` as in Event."""

    kind: str
    since: float
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "since": self.since, "message": self.message, **self.fields}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Problem:
        """From a problem's JSON object, whose shape the caller checked (engine/state.py)."""
        fields = {k: v for k, v in data.items() if k not in PROBLEM_MEMBERS}
        return cls(str(data["kind"]), data["since"], str(data["message"]), fields)


PROBLEM_MEMBERS = ("kind", "since", "message")
