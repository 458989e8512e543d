"""The gemini probe: gemini://fqdn/path answers status 20; TOFU, pinned or CA-verified TLS."""

from __future__ import annotations

import re
import ssl
import time

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeSpec
from kissha.probes.base import (
    GEMINI_PORT,
    Deadline,
    Outcome,
    ProbeFailed,
    cert_time,
    failure,
    read_response,
    server_name,
    socket_for,
    tls_context,
    unverified_context,
)
from kissha.probes.tofu import ProbeContext, Untrusted, day, der_not_after, fingerprint, short


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


def gemini(
    node: Node, family: Family, spec: ProbeSpec, health: HealthConfig, context: ProbeContext
) -> Outcome:
    """Request ``gemini://fqdn/path``; status 20 and, if ``expect``, the text in the body."""
    address = node.address(family)
    assert address is not None
    port = "" if spec.port == GEMINI_PORT else f":{spec.port}"
    request = f"gemini://{node.fqdn}{port}{spec.path}\r\n".encode()
    deadline = Deadline(health.timeout)
    sock = socket_for(family)
    conn: ssl.SSLSocket | None = None
    stage = "while connecting"
    note, warning, not_after = "", None, None
    try:
        deadline.left(sock)
        sock.connect((address, spec.port))
        stage = "during the TLS handshake"
        deadline.left(sock)
        ctx = tls_context(spec.ca_file) if spec.tls == "ca" else unverified_context()
        conn = ctx.wrap_socket(sock, server_hostname=server_name(node.fqdn))  # SNI even unverified
        der = conn.getpeercert(binary_form=True) or b""
        if spec.tls == "ca":
            with_cert = conn.getpeercert()
            if with_cert and "notAfter" in with_cert:
                not_after = cert_time(str(with_cert["notAfter"]))
        else:  # checked before the request: an impostor gets no request
            not_after, note, warning = _check_identity(node, spec, der, health, context)
        stage = "waiting for the response"
        deadline.left(conn)
        conn.sendall(request)
        # The header is at most 1024 bytes of meta; without a text to find, stop after it.
        until = None if spec.expect else b"\r\n"
        raw = read_response(conn, deadline, health.max_body + 1029, until)
    except (OSError, ValueError) as exc:
        raise ProbeFailed(failure(exc, stage, deadline.seconds)) from None
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
