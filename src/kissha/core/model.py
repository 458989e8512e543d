"""Frozen value types shared by the pure core and the edges."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

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
