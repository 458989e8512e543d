"""The smtp probe: the node's mail server greets with a 220 reply."""

from __future__ import annotations

import re

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.probes.base import Deadline, Outcome, ProbeFailed, failure, socket_for
from kissha.probes.tofu import ProbeContext

_REPLY_RE = re.compile(rb"^([0-9]{3})([ -]|\r?$)")


def _last_reply_line(buffer: bytes) -> bytes | None:
    """The line that ends a reply (``220-`` lines continue it), once it is complete."""
    for line in buffer.split(b"\n")[:-1]:
        m = _REPLY_RE.match(line)
        if m is None or m.group(2) != b"-":
            return line.rstrip(b"\r")
    return None


def smtp(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Read the greeting: it must be a 220 reply."""
    address = node.address(family)
    assert address is not None
    deadline = Deadline(health.timeout)
    sock = socket_for(family)
    stage = "while connecting"
    buffer = b""
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
        stage = "waiting for the banner"
        while len(buffer) < 4096 and _last_reply_line(buffer) is None:
            deadline.left(sock)
            chunk = sock.recv(4096)
            if not chunk:
                break
            buffer += chunk
        if buffer:  # be polite; whatever happens now does not change the result
            try:
                deadline.left(sock)
                sock.sendall(b"QUIT\r\n")
            except (OSError, ValueError):
                pass
    except (OSError, ValueError) as exc:
        raise ProbeFailed(failure(exc, stage, deadline.seconds)) from None
    finally:
        sock.close()
    last = _last_reply_line(buffer + b"\n")  # a last line cut by EOF counts as it is
    first = buffer.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    if not buffer.strip():
        raise ProbeFailed("connection closed without a banner")
    if last is None:
        raise ProbeFailed("connection closed in the middle of the banner")
    m = _REPLY_RE.match(last)
    text = last.decode("utf-8", "replace")
    if m is None:
        raise ProbeFailed(f"not an SMTP banner: {text[:60]!r}")
    if m.group(1) != b"220":
        raise ProbeFailed(f"SMTP banner {text[:60]}")
    return Outcome(f"220 {first[4:44]}".rstrip())
