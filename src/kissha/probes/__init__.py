"""Health probes: every node, every address family, concurrently, with hard time limits.

Each probe connects to the node's configured address (never through DNS, which kissha
itself rewrites); HTTP(S) and Gemini send the node's FQDN as Host, URL host and SNI.
Probe types: https, http, gemini, tcp, dns and smtp. Threads, not asyncio: the probes
are few and asyncio alone costs ~50 ms at start-up, every minute, on small VMs.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeResult, ProbeSpec
from kissha.dns import wire
from kissha.probes.tofu import (
    ProbeContext,
    Untrusted,
    cert_warning,
    day,
    der_not_after,
    fingerprint,
    short,
)

USER_AGENT = "kissha-probe/0.1"
GEMINI_PORT = 1965


class ProbeFailed(Exception):
    """A probe attempt failed; the message says why in words a person understands."""


@dataclass(frozen=True)
class Outcome:
    detail: str
    cert_not_after: float | None = None
    warning: str | None = None


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
_UNVERIFIED: list[ssl.SSLContext] = []


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying client context per CA file (loading a CA store is not free)."""
    with _CONTEXT_LOCK:
        ctx = _CONTEXTS.get(ca_file)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=ca_file)
            _CONTEXTS[ca_file] = ctx
        return ctx


def unverified_context() -> ssl.SSLContext:
    """For Gemini with TOFU or pinned fingerprints: no chain or hostname check (the
    certificate is usually self-signed); kissha compares its fingerprint instead."""
    with _CONTEXT_LOCK:
        if not _UNVERIFIED:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            _UNVERIFIED.append(ctx)
        return _UNVERIFIED[0]


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


def _socket(family: Family, kind: int = socket.SOCK_STREAM) -> socket.socket:
    return socket.socket(socket.AF_INET if family == "ipv4" else socket.AF_INET6, kind)


def _read_response(
    sock: socket.socket, deadline: _Deadline, cap: int, until: bytes | None = None
) -> bytes:
    """Read to EOF, ``cap`` bytes, or (if given) the first ``until``."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        deadline.left(sock)
        try:
            chunk = sock.recv(min(65536, cap - size))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            if not chunks:
                raise
            break  # a TLS peer that hangs up without close_notify: we have its answer
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if until is not None and until in chunk:
            break
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
    sock = _socket(family)
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


def _check_identity(
    node: Node, spec: ProbeSpec, der: bytes, health: HealthConfig, context: ProbeContext
) -> tuple[float | None, str, str | None]:
    """Gemini without CA verification: expiry, then the pinned or first-seen fingerprint.
    Returns (notAfter, a note for the detail, a warning); raises ProbeFailed."""
    if not der:
        raise ProbeFailed("TLS: the server sent no certificate")
    try:
        not_after: float | None = der_not_after(der)
    except ValueError:
        not_after = None
    now = time.time()
    if not_after is not None and not_after <= now:
        raise ProbeFailed(f"TLS: certificate expired on {day(not_after)}")
    fp = fingerprint(der)
    if spec.tls == "pinned":
        pinned = dict(spec.fingerprints).get(node.name)
        if fp != pinned:
            want = f"pinned {short(pinned)}" if pinned else "no pinned fingerprint"
            raise ProbeFailed(f"TLS: certificate {short(fp)} does not match ({want})")
        return not_after, "", None
    try:
        note, warning = context.trust(
            node.name, spec.name, fp, not_after, now, health.cert_warn_days
        )
    except Untrusted as exc:
        raise ProbeFailed(str(exc)) from None
    return not_after, note, warning


# --- the probe types ------------------------------------------------------------------

ProbeFn = Callable[[Node, Family, ProbeSpec, HealthConfig, ProbeContext], Outcome]


def _https(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    return http_get(node, family, spec, health.timeout, health.max_body, tls=True)


def _http(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    return http_get(node, family, spec, health.timeout, health.max_body, tls=False)


_GEMINI_WORDS = {
    "10": "input requested",
    "11": "sensitive input requested",
    "40": "temporary failure",
    "41": "server unavailable",
    "42": "CGI error",
    "43": "proxy error",
    "44": "slow down",
    "50": "permanent failure",
    "51": "not found",
    "52": "gone",
    "53": "proxy request refused",
    "59": "bad request",
    "60": "client certificate required",
    "61": "client certificate not authorised",
    "62": "client certificate not valid",
}
_GEMINI_CLASSES = {
    "1": "input requested",
    "2": "success, but not 20",
    "4": "temporary failure",
    "5": "permanent failure",
    "6": "client certificate required",
}


def _gemini_words(status: str, meta: str) -> str:
    if status[0] == "3":
        return f"redirect to {meta[:80]}"
    return _GEMINI_WORDS.get(status) or _GEMINI_CLASSES.get(status[0], "unknown status")


def _gemini(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Request ``gemini://fqdn/path``; status 20 and, if ``expect``, the text in the body."""
    address = node.address(family)
    assert address is not None
    port = "" if spec.port == GEMINI_PORT else f":{spec.port}"
    request = f"gemini://{node.fqdn}{port}{spec.path}\r\n".encode()
    deadline = _Deadline(health.timeout)
    sock = _socket(family)
    conn: ssl.SSLSocket | None = None
    stage = "while connecting"
    note, warning, not_after = "", None, None
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
        stage = "during the TLS handshake"
        deadline.left(sock)
        ctx = tls_context(spec.ca_file) if spec.tls == "ca" else unverified_context()
        conn = ctx.wrap_socket(sock, server_hostname=node.fqdn)  # SNI even unverified
        der = conn.getpeercert(binary_form=True) or b""
        if spec.tls == "ca":
            with_cert = conn.getpeercert()
            if with_cert and "notAfter" in with_cert:
                not_after = float(ssl.cert_time_to_seconds(str(with_cert["notAfter"])))
        else:  # checked before the request: an impostor gets no request
            not_after, note, warning = _check_identity(node, spec, der, health, context)
        stage = "waiting for the response"
        deadline.left(conn)
        conn.sendall(request)
        # The header is at most 1024 bytes of meta; without a text to find, stop after it.
        until = None if spec.expect else b"\r\n"
        raw = _read_response(conn, deadline, health.max_body + 1029, until)
    except (OSError, ValueError) as exc:
        raise ProbeFailed(_failure(exc, stage, deadline.seconds)) from None
    finally:
        if conn is not None:
            conn.close()
        sock.close()
    head, sep, body = raw.partition(b"\r\n")
    line = head.decode("utf-8", "replace")
    if not raw:
        raise ProbeFailed("connection closed without a response")
    if not sep or not re.fullmatch(r"[1-6][0-9]( .*)?", line):
        raise ProbeFailed(f"not a Gemini response: {line[:60]!r}")
    status, meta = line[:2], line[3:].strip()
    if status != "20":
        raise ProbeFailed(f"Gemini status {status} ({_gemini_words(status, meta)})")
    if spec.expect:
        expect = spec.expect.format(fqdn=node.fqdn)
        if expect.encode() not in body[: health.max_body]:
            raise ProbeFailed(f"Gemini 20 but text not found: expected {expect!r}")
        detail = "Gemini 20, text found"
    else:
        detail = f"Gemini 20 {meta[:40]}".rstrip()
    return Outcome(f"{detail} ({note})" if note else detail, not_after, warning)


def _tcp(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    address = node.address(family)
    assert address is not None
    deadline = _Deadline(health.timeout)
    sock = _socket(family)
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
    except (OSError, ValueError) as exc:
        raise ProbeFailed(_failure(exc, "while connecting", deadline.seconds)) from None
    finally:
        sock.close()
    return Outcome("connected")


_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def _dns(
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
    deadline = _Deadline(health.timeout)
    sock = _socket(family, socket.SOCK_DGRAM)
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
        raise ProbeFailed(_failure(exc, "waiting for the answer", deadline.seconds)) from None
    finally:
        sock.close()
    if answer.rcode:
        raise ProbeFailed(_RCODES.get(answer.rcode, f"rcode {answer.rcode}"))
    if not answer.authoritative:
        raise ProbeFailed(f"not authoritative for {spec.zone}")
    if len(answer.values) != 1:
        raise ProbeFailed(f"no SOA in the answer for {spec.zone}")
    return Outcome(f"SOA serial {answer.values[0]}, authoritative")


_REPLY_RE = re.compile(rb"^([0-9]{3})([ -]|\r?$)")


def _last_reply_line(buffer: bytes) -> bytes | None:
    """The line that ends a reply (``220-`` lines continue it), once it is complete."""
    for line in buffer.split(b"\n")[:-1]:
        m = _REPLY_RE.match(line)
        if m is None or m.group(2) != b"-":
            return line.rstrip(b"\r")
    return None


def _smtp(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Read the greeting: it must be a 220 reply."""
    address = node.address(family)
    assert address is not None
    deadline = _Deadline(health.timeout)
    sock = _socket(family)
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
        raise ProbeFailed(_failure(exc, stage, deadline.seconds)) from None
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


PROBES: dict[str, ProbeFn] = {
    "https": _https,
    "http": _http,
    "gemini": _gemini,
    "tcp": _tcp,
    "dns": _dns,
    "smtp": _smtp,
}


# --- rounds ---------------------------------------------------------------------------


def probe_once(
    node: Node,
    family: Family,
    spec: ProbeSpec,
    health: HealthConfig,
    context: ProbeContext | None = None,
) -> ProbeResult:
    """Run one probe with its retries; never raises."""
    fn = PROBES[spec.kind]
    context = context if context is not None else ProbeContext()
    address = node.address(family) or ""
    attempts = 0
    detail = ""
    for attempts in range(1, health.retries + 2):
        started = time.monotonic()
        try:
            out = fn(node, family, spec, health, context)
        except ProbeFailed as exc:
            detail = str(exc)
            continue
        except Exception as exc:  # a probe bug must fail the probe, not the run
            detail = f"probe error: {type(exc).__name__}: {exc}"
            continue
        latency = (time.monotonic() - started) * 1000
        expiry = cert_warning(out.cert_not_after, time.time(), health.cert_warn_days)
        warning = "; ".join(w for w in (out.warning, expiry) if w) or None
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
            warning,
        )
    return ProbeResult(
        node.name, spec.name, family, address, False, detail, spec.required, None, attempts
    )


def run_round(
    nodes: Sequence[Node], health: HealthConfig, context: ProbeContext | None = None
) -> list[ProbeResult]:
    """Probe every node over each of its families with each of its probes, all at once.

    A round costs about one timeout per attempt, not the sum; a worker that overstays
    its hard limit (it cannot, sockets carry deadlines, but still) is reported as a
    timeout and abandoned as a daemon thread. ``context`` carries the TOFU fingerprints
    (without one, they are learned for this round only).
    """
    context = context if context is not None else ProbeContext()
    tasks = [(n, f, s) for n in nodes for f in n.families for s in health.probes if n.runs(s.name)]
    for spec in health.probes:
        # Build contexts once, before the threads race for them.
        if spec.kind == "https" or (spec.kind == "gemini" and spec.tls == "ca"):
            tls_context(spec.ca_file)
        elif spec.kind == "gemini":
            unverified_context()
    results: list[ProbeResult | None] = [None] * len(tasks)
    done = threading.Semaphore(0)

    def work(i: int) -> None:
        try:
            results[i] = probe_once(*tasks[i], health, context)
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
