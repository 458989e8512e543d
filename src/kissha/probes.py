"""Health probes: every node, every address family, concurrently, with hard time limits.

Each probe connects to the node's configured address (never through DNS, which kissha
itself rewrites), sends Host and SNI for the node's FQDN and verifies its certificate.
Threads, not asyncio: the probes are few and asyncio alone costs ~50 ms at start-up,
every minute, on small VMs.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kissha.config import HealthConfig
from kissha.model import Family, Node, ProbeResult, ProbeSpec

USER_AGENT = "kissha-probe/0.1"


class ProbeFailed(Exception):
    """A probe attempt failed; the message says why in words a person understands."""


@dataclass(frozen=True)
class Outcome:
    detail: str
    cert_not_after: float | None = None


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, sock: socket.socket) -> None:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)


_CONTEXTS: dict[str | None, ssl.SSLContext] = {}
_CONTEXT_LOCK = threading.Lock()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying client context per CA file (loading a CA store is not free)."""
    with _CONTEXT_LOCK:
        ctx = _CONTEXTS.get(ca_file)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=ca_file)
            _CONTEXTS[ca_file] = ctx
        return ctx


def _failure(exc: BaseException, stage: str, timeout: float) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}".replace("_", " ").lower().replace("tls: ", "TLS: ")
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timeout after {timeout:g} s {stage}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset {stage}"
    if isinstance(exc, OSError):
        words = {
            errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network unreachable",
            errno.EADDRNOTAVAIL: "address not available here",
        }.get(exc.errno or 0)
        return words or f"{exc.strerror or exc} {stage}".strip()
    return f"{type(exc).__name__}: {exc}"


def _read_response(sock: socket.socket, deadline: _Deadline, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        deadline.left(sock)
        chunk = sock.recv(min(65536, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


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
    deadline = _Deadline(timeout)
    sock = socket.socket(socket.AF_INET if family == "ipv4" else socket.AF_INET6)
    stage = "while connecting"
    cert_not_after = None
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
        conn: socket.socket = sock
        if tls:
            stage = "during the TLS handshake"
            deadline.left(sock)
            conn = tls_context(spec.ca_file).wrap_socket(sock, server_hostname=node.fqdn)
            cert = conn.getpeercert()  # type: ignore[attr-defined,unused-ignore]
            if cert and "notAfter" in cert:
                cert_not_after = float(ssl.cert_time_to_seconds(str(cert["notAfter"])))
        stage = "waiting for the response"
        # HTTP/1.0 with Connection: close: no chunking, no keep-alive, read to EOF.
        request = (
            f"GET {spec.path} HTTP/1.0\r\nHost: {node.fqdn}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        deadline.left(conn)
        conn.sendall(request.encode("ascii"))
        raw = _read_response(conn, deadline, max_body + 16384)
    except (OSError, ValueError) as exc:
        raise ProbeFailed(_failure(exc, stage, deadline.seconds)) from None
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


ProbeFn = Callable[[Node, Family, ProbeSpec, float, int], Outcome]


def _https(node: Node, family: Family, spec: ProbeSpec, timeout: float, max_body: int) -> Outcome:
    return http_get(node, family, spec, timeout, max_body, tls=True)


PROBES: dict[str, ProbeFn] = {"https": _https}


def probe_once(node: Node, family: Family, spec: ProbeSpec, health: HealthConfig) -> ProbeResult:
    """Run one probe with its retries; never raises."""
    fn = PROBES[spec.kind]
    address = node.address(family) or ""
    attempts = 0
    detail = ""
    for attempts in range(1, health.retries + 2):
        started = time.monotonic()
        try:
            out = fn(node, family, spec, health.timeout, health.max_body)
        except ProbeFailed as exc:
            detail = str(exc)
            continue
        except Exception as exc:  # a probe bug must fail the probe, not the run
            detail = f"probe error: {type(exc).__name__}: {exc}"
            continue
        latency = (time.monotonic() - started) * 1000
        return ProbeResult(
            node.name,
            spec.name,
            family,
            address,
            True,
            out.detail,
            spec.required,
            round(latency, 1),
            attempts,
            out.cert_not_after,
        )
    return ProbeResult(
        node.name, spec.name, family, address, False, detail, spec.required, None, attempts
    )


def run_round(nodes: Sequence[Node], health: HealthConfig) -> list[ProbeResult]:
    """Probe every node over each of its families with every probe, all at once.

    A round costs about one timeout per attempt, not the sum; a worker that overstays
    its hard limit (it cannot, sockets carry deadlines, but still) is reported as a
    timeout and abandoned as a daemon thread.
    """
    tasks = [(n, f, s) for n in nodes for f in n.families for s in health.probes]
    for spec in health.probes:
        tls_context(spec.ca_file)  # build contexts once, before the threads race for them
    results: list[ProbeResult | None] = [None] * len(tasks)
    done = threading.Semaphore(0)

    def work(i: int) -> None:
        try:
            results[i] = probe_once(*tasks[i], health)
        finally:
            done.release()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(tasks))]
    for t in threads:
        t.start()
    limit = time.monotonic() + health.timeout * (health.retries + 1) + 1.0
    for _ in tasks:
        if not done.acquire(timeout=max(0.0, limit - time.monotonic())):
            break
    out: list[ProbeResult] = []
    for i, (node, family, spec) in enumerate(tasks):
        r = results[i]
        if r is None:
            r = ProbeResult(
                node.name,
                spec.name,
                family,
                node.address(family) or "",
                False,
                f"timeout after {health.timeout:g} s (hard limit)",
                spec.required,
            )
        out.append(r)
    return out
