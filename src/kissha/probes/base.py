"""What every probe shares: the failure type and words, deadlines, sockets, TLS contexts."""

from __future__ import annotations

import calendar
import errno
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.probes.tofu import ProbeContext

USER_AGENT = "kissha-probe/0.1"
GEMINI_PORT = 1965


class ProbeFailed(Exception):
    """A probe attempt failed; the message says why in words a person understands."""


@dataclass(frozen=True)
class Outcome:
    detail: str
    cert_not_after: float | None = None
    warning: str | None = None


class Deadline:
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


def server_name(fqdn: str) -> bytes | str:
    """``fqdn`` as the ssl module's server_hostname (SNI, and the name checked): an ASCII
    name as bytes, which ssl takes as it is, where a str goes through the idna codec
    (~1.3 ms to load, every run) to come out the same for the names the config allows."""
    return fqdn.encode("ascii") if fqdn.isascii() else fqdn


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CERT_TIME = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4}) GMT")


def cert_time(text: str) -> float:
    """A certificate's notAfter as getpeercert() gives it ("Jun  1 12:00:00 2027 GMT") in
    epoch seconds, as ssl.cert_time_to_seconds, without its time.strptime (~1.2 ms to
    load and set up on first use, every run); ValueError when it is not such a time."""
    m = _CERT_TIME.fullmatch(text)
    if m is None or m[1] not in _MONTHS:
        raise ValueError(f"not a certificate time: {text!r}")
    day, hour, minute, second = int(m[2]), int(m[3]), int(m[4]), int(m[5])
    if not (1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):
        raise ValueError(f"not a certificate time: {text!r}")
    month = _MONTHS.index(m[1]) + 1
    return float(calendar.timegm((int(m[6]), month, day, hour, minute, second)))


def failure(exc: BaseException, stage: str, timeout: float) -> str:
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


def socket_for(family: Family, kind: int = socket.SOCK_STREAM) -> socket.socket:
    return socket.socket(socket.AF_INET if family == "ipv4" else socket.AF_INET6, kind)


def read_response(
    sock: socket.socket, deadline: Deadline, cap: int, until: bytes | None = None
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


# A probe type: one attempt against one node over one family; raises ProbeFailed.
ProbeFn = Callable[[Node, Family, ProbeSpec, HealthConfig, ProbeContext], Outcome]
