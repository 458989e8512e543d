"""The http and https probes: GET a path from the node's address, status 200, a text."""

from __future__ import annotations

import socket

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.probes.base import (
    USER_AGENT,
    Deadline,
    Outcome,
    ProbeFailed,
    cert_time,
    failure,
    read_response,
    server_name,
    socket_for,
    tls_context,
)
from kissha.probes.tofu import ProbeContext


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            break
        try:
            size = int(body[pos:end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(body[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)


def http_get(
    node: Node, family: Family, spec: ProbeSpec, timeout: float, max_body: int, tls: bool
) -> Outcome:
    """GET ``spec.path`` from the node's address; raise ProbeFailed with the reason."""
    address = node.address(family)
    assert address is not None
    deadline = Deadline(timeout)
    sock = socket_for(family)
    stage = "while connecting"
    cert_not_after = None
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
        conn: socket.socket = sock
        if tls:
            stage = "during the TLS handshake"
            deadline.left(sock)
            conn = tls_context(spec.ca_file).wrap_socket(
                sock, server_hostname=server_name(node.fqdn)
            )
            cert = conn.getpeercert()  # type: ignore[attr-defined,unused-ignore]
            if cert and "notAfter" in cert:
                cert_not_after = cert_time(str(cert["notAfter"]))
        stage = "waiting for the response"
        # HTTP/1.0 with Connection: close: no chunking, no keep-alive, read to EOF.
        request = (
            f"GET {spec.path} HTTP/1.0\r\nHost: {node.fqdn}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        deadline.left(conn)
        conn.sendall(request.encode("ascii"))
        raw = read_response(conn, deadline, max_body + 16384)
    except (OSError, ValueError) as exc:
        raise ProbeFailed(failure(exc, stage, deadline.seconds)) from None
    finally:
        sock.close()
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeFailed(f"not an HTTP response: {status_line[:60]!r}")
    status = int(parts[1])
    if status != 200:
        raise ProbeFailed(f"HTTP status {status}")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    expect = spec.expect.format(fqdn=node.fqdn)
    if expect.encode() not in body[:max_body]:
        raise ProbeFailed(f"HTTP 200 but text not found: expected {expect!r}")
    return Outcome("HTTP 200, text found", cert_not_after)


def https(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    return http_get(node, family, spec, health.timeout, health.max_body, tls=True)


def http(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    return http_get(node, family, spec, health.timeout, health.max_body, tls=False)
