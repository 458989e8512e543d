"""The dns probe: the node's nameserver answers the zone's SOA, authoritatively."""

from __future__ import annotations

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.dns.client import ask_each
from kissha.probes.base import Outcome, ProbeFailed
from kissha.probes.tofu import ProbeContext


def dns(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Ask the node's nameserver for the zone's SOA over UDP (TCP if truncated); it must
    answer with AA. A lost datagram is sent again within the attempt."""
    address = node.address(family)
    assert address is not None
    replies, unanswered = ask_each(
        address, spec.port, {0: (spec.zone or "", "SOA")}, health.timeout
    )
    if 0 not in replies:
        why = unanswered.get(0, "timeout")
        if why == "timeout":
            why = f"timeout after {health.timeout:g} s waiting for the answer"
        raise ProbeFailed(why)
    reply = replies[0]
    if reply.error is not None or reply.rcode:
        raise ProbeFailed(reply.problem or "")
    if not reply.authoritative:
        raise ProbeFailed(f"not authoritative for {spec.zone}")
    if len(reply.values) != 1:
        raise ProbeFailed(f"no SOA in the answer for {spec.zone}")
    return Outcome(f"SOA serial {reply.values[0]}, authoritative")
