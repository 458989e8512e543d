"""The tcp probe: a connection to the node's address and port is accepted."""

from __future__ import annotations

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.probes.base import Deadline, Outcome, ProbeFailed, failure, socket_for
from kissha.probes.tofu import ProbeContext


def tcp(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    address = node.address(family)
    assert address is not None
    deadline = Deadline(health.timeout)
    sock = socket_for(family)
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
    except (OSError, ValueError) as exc:
        raise ProbeFailed(failure(exc, "while connecting", deadline.seconds)) from None
    finally:
        sock.close()
    return Outcome("connected")
