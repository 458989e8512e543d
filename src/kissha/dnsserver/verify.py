"""Verify what authoritative servers answer: many queries in flight, one time budget.

Queries are pipelined over one UDP socket per server address, so checking a thousand
zones costs about as much as parsing the answers. dnspython builds and parses messages;
it is imported here, on the change path only, never on a run that changes nothing.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

WINDOW = 256  # queries in flight per server address
RESEND_AFTER = 0.25  # a UDP query unanswered this long is sent again
RETRY_AFTER = 0.02  # an answer that is not yet the expected one is asked for again


@dataclass(frozen=True)
class Check:
    """One expectation: ``serial`` for SOA checks, ``addresses`` for A/AAAA."""

    name: str
    rdtype: str
    addresses: frozenset[str] | None = None
    serial: int | None = None

    def describe(self) -> str:
        want = (
            str(self.serial) if self.serial is not None else ", ".join(sorted(self.addresses or ()))
        )
        return f"{self.name} {self.rdtype} = {want or '(nothing)'}"


def _evaluate(check: Check, message: object) -> tuple[bool, str]:
    import dns.flags
    import dns.rcode
    import dns.rdatatype

    rcode = message.rcode()  # type: ignore[attr-defined]
    if rcode != dns.rcode.NOERROR:
        return False, dns.rcode.to_text(rcode)
    if not message.flags & dns.flags.AA:  # type: ignore[attr-defined]
        return False, "not authoritative"
    rdtype = dns.rdatatype.from_text(check.rdtype)
    values: list[str] = []
    for rrset in message.answer:  # type: ignore[attr-defined]
        if rrset.rdtype != rdtype:
            continue
        for rd in rrset:
            if check.serial is not None:
                values.append(str(rd.serial))
            else:
                values.append(ipaddress.ip_address(rd.address).compressed)
    if check.serial is not None:
        return (values == [str(check.serial)]), ("serial " + (", ".join(values) or "none"))
    got = frozenset(values)
    return got == check.addresses, (", ".join(sorted(got)) or "no addresses")


def verify(servers: Sequence[str], port: int, checks: Sequence[Check], timeout: float) -> list[str]:
    """Query every server for every check until all match or ``timeout`` passes.

    Returns the failures in words (empty when everything matched).
    """
    import dns.message

    if not checks:
        return []
    # Build each query once; only its 16-bit ID changes between sends.
    wires = [bytearray(dns.message.make_query(c.name, c.rdtype).to_wire()) for c in checks]
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    per: dict[str, _ServerState] = {}
    for server in servers:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect((server, port))
        st = _ServerState(server, sock, list(range(len(checks))))
        per[server] = st
        sel.register(sock, selectors.EVENT_READ, st)
    try:
        while any(st.pending for st in per.values()):
            now = time.monotonic()
            if now >= deadline:
                break
            for st in per.values():
                st.send(wires, now)
            for key, _ in sel.select(timeout=min(RETRY_AFTER, max(0.0, deadline - now))):
                st = key.data
                st.receive(checks)
    finally:
        for st in per.values():
            sel.unregister(st.sock)
            st.sock.close()
        sel.close()
    failures = []
    for st in per.values():
        for i in sorted(st.pending):
            got = st.last.get(i, "no answer")
            failures.append(f"{st.server}: {checks[i].describe()}, got {got}")
    return failures


class _ServerState:
    def __init__(self, server: str, sock: socket.socket, pending: list[int]) -> None:
        self.server = server
        self.sock = sock
        self.pending = set(pending)
        self.queue = list(pending)  # checks to (re)send, in order
        self.not_before: dict[int, float] = {}
        self.inflight: dict[int, tuple[int, float]] = {}  # query id -> (check, sent at)
        self.last: dict[int, str] = {}
        self.next_id = 1

    def send(self, wires: list[bytearray], now: float) -> None:
        for qid, (i, sent) in list(self.inflight.items()):
            if now - sent > RESEND_AFTER:
                del self.inflight[qid]
                self.queue.append(i)
        later = []
        while self.queue and len(self.inflight) < WINDOW:
            i = self.queue.pop(0)
            if i not in self.pending:
                continue
            if self.not_before.get(i, 0.0) > now:
                later.append(i)
                continue
            qid = self.next_id
            self.next_id = self.next_id % 65535 + 1
            wire = wires[i]
            wire[0:2] = qid.to_bytes(2, "big")
            try:
                self.sock.send(wire)
            except BlockingIOError:
                later.append(i)
                break
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP
                self.last[i] = exc.strerror or str(exc)
                later.append(i)
                self.not_before[i] = now + RETRY_AFTER
                continue
            self.inflight[qid] = (i, now)
        self.queue.extend(later)

    def receive(self, checks: Sequence[Check]) -> None:
        import dns.exception
        import dns.message

        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:  # nothing listens there: ICMP port unreachable
                for i, _ in self.inflight.values():
                    self.last[i] = exc.strerror or str(exc)
                return
            if len(data) < 2:
                continue
            entry = self.inflight.pop(int.from_bytes(data[:2], "big"), None)
            if entry is None:
                continue
            i = entry[0]
            try:
                message = dns.message.from_wire(data)
            except dns.exception.DNSException as exc:
                self.last[i] = f"unparsable answer ({exc})"
                ok = False
            else:
                ok, self.last[i] = _evaluate(checks[i], message)
            if ok:
                self.pending.discard(i)
            else:
                self.not_before[i] = time.monotonic() + RETRY_AFTER
                self.queue.append(i)
