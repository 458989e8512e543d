"""The dns probe: the node's nameserver answers the zone's SOA, authoritatively."""

from __future__ import annotations

import os
import socket
import time

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.dns import wire
from kissha.probes.base import Deadline, Outcome, ProbeFailed, failure, socket_for
from kissha.probes.tofu import ProbeContext

_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def dns(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Ask the node's nameserver for the zone's SOA over UDP; it must answer with AA."""
    address = node.address(family)
    assert address is not None
    qid = int.from_bytes(os.urandom(2), "big")
    message = wire.query(qid, spec.zone or "", "SOA")
    if message is None:
        raise ProbeFailed(f"cannot build a query for {spec.zone!r}")
    question = message[12:]
    deadline = Deadline(health.timeout)
    sock = socket_for(family, socket.SOCK_DGRAM)
    try:
        # Connected: ICMP port unreachable comes back as "connection refused".
        sock.connect((address, spec.port))
        sock.send(message)
        resend_at: float | None = time.monotonic() + health.timeout / 3
        while True:
            now = time.monotonic()
            if now >= deadline.end:
                raise TimeoutError
            if resend_at is not None and now >= resend_at:
                sock.send(message)  # once: a lost datagram must not cost the whole attempt
                resend_at = None
            sock.settimeout(min(deadline.end, resend_at or deadline.end) - now)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if data[:2] != message[:2] or len(data) < 12 or not data[2] & 0x80:
                continue  # not a response to this query (a late one to another)
            answer = wire.read(data, question, "SOA")
            if answer is not None:
                break
            rcode = data[3] & 0x0F
            raise ProbeFailed(
                _RCODES.get(rcode, f"rcode {rcode}") if rcode else "an answer kissha cannot read"
            )
    except (OSError, ValueError) as exc:
        raise ProbeFailed(failure(exc, "waiting for the answer", deadline.seconds)) from None
    finally:
        sock.close()
    if answer.rcode:
        raise ProbeFailed(_RCODES.get(answer.rcode, f"rcode {answer.rcode}"))
    if not answer.authoritative:
        raise ProbeFailed(f"not authoritative for {spec.zone}")
    if len(answer.values) != 1:
        raise ProbeFailed(f"no SOA in the answer for {spec.zone}")
    return Outcome(f"SOA serial {answer.values[0]}, authoritative")
