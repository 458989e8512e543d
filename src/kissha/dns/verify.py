"""Verify what authoritative servers answer: many queries in flight, one time budget.

Queries are pipelined over one UDP socket per server address. A zone's name checks
wait until its SOA check passed on that server: the serial shows that the server loaded
the new file, so until then asking for names only measures how long a reload takes.
Queries and answers for plain names go through kissha's small wire reader (wire.py,
see there why); dnspython builds and parses everything else, imported only then.

A server that still answers a zone's *old* serial is still loading it (nsd serves the
old zones while a reload reads the new files): such checks are asked for a while
longer (``grace``), so a slow reload of a large change is waited for, not rolled back.
When verification gives up, each failure says which it was: still loading, a wrong
answer, or no answer.
"""

from __future__ import annotations

import heapq
import ipaddress
import selectors
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from kissha.dns import wire as dnswire

WINDOW = 256  # queries in flight per server address
RESEND_AFTER = 0.25  # a UDP query unanswered this long is sent again
RETRY_AFTER = 0.01  # an answer that is not yet the expected one is asked for again


@dataclass(frozen=True)
class Check:
    """One expectation: ``serial`` for SOA checks, ``addresses`` for A/AAAA.

    ``gate`` is the index of a check that must pass first (the zone's SOA check);
    ``zone`` the zone it belongs to; ``old_serial`` (SOA checks) the serial served
    before the reload: while the server answers it, it is still loading.
    """

    name: str
    rdtype: str
    addresses: frozenset[str] | None = None
    serial: int | None = None
    gate: int | None = None
    zone: str = ""
    old_serial: int | None = None

    def describe(self) -> str:
        if self.serial is not None:
            want = str(self.serial)
        else:
            want = ", ".join(sorted(self.addresses or ())) or "(nothing)"
        return f"{self.name} {self.rdtype} = {want}"


class _Dns:
    """dnspython, imported on first use (~90 ms), for what the wire reader declines."""

    _loaded: _Dns | None = None

    def __init__(self) -> None:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype

        self.exception, self.flags, self.message = dns.exception, dns.flags, dns.message
        self.rcode, self.rdatatype = dns.rcode, dns.rdatatype

    @classmethod
    def get(cls) -> _Dns:
        if cls._loaded is None:
            cls._loaded = cls()
        return cls._loaded


_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def _judge(check: Check, rcode: int, aa: bool, values: Sequence[str]) -> tuple[bool, str]:
    if rcode != 0:
        return False, _RCODES.get(rcode, f"rcode {rcode}")
    if not aa:
        return False, "not authoritative"
    if check.serial is not None:
        return list(values) == [str(check.serial)], "serial " + (", ".join(values) or "none")
    got = frozenset(values)
    return got == check.addresses, (", ".join(sorted(got)) or "no addresses")


def _evaluate_dnspython(check: Check, data: bytes) -> tuple[bool, str]:
    d = _Dns.get()
    try:
        message = d.message.from_wire(data)
    except d.exception.DNSException as exc:
        return False, f"unparsable answer ({exc})"
    rdtype = d.rdatatype.from_text(check.rdtype)
    values: list[str] = []
    for rrset in message.answer:
        if rrset.rdtype != rdtype:
            continue
        for rd in rrset:
            if check.serial is not None:
                values.append(str(rd.serial))
            else:
                values.append(ipaddress.ip_address(rd.address).compressed)
    return _judge(check, message.rcode(), bool(message.flags & d.flags.AA), values)


def _query_wire(check: Check) -> bytearray:
    fast = dnswire.query(0, check.name, check.rdtype)
    if fast is not None:
        return bytearray(fast)
    return bytearray(_Dns.get().message.make_query(check.name, check.rdtype).to_wire())


@dataclass(frozen=True)
class Failure:
    """A check that did not pass on one server, and why it was given up."""

    server: str
    check: Check
    got: str
    kind: str  # "still loading" | "wrong answer" | "no answer"
    waited: float

    @property
    def zone(self) -> str:
        return self.check.zone

    def __str__(self) -> str:
        c = self.check
        if self.kind == "still loading":
            return (
                f"{self.server}: {c.name} still serves the old serial {c.old_serial} "
                f"after {self.waited:.1f} s (still loading; wanted {c.serial})"
            )
        if self.kind == "no answer":
            return f"{self.server}: {c.describe()}, no answer after {self.waited:.1f} s"
        return f"{self.server}: {c.describe()}, got {self.got} ({self.kind})"


def verify(
    servers: Sequence[str],
    port: int,
    checks: Sequence[Check],
    timeout: float,
    grace: float = 0.0,
) -> list[Failure]:
    """Query every server for every check until all match or ``timeout`` passes; while a
    server still answers a zone's old serial, up to ``grace`` seconds more.

    Returns the failures (empty when everything matched).
    """
    if not checks:
        return []
    # Build each query once; only its 16-bit ID changes between sends.
    wires = [_query_wire(c) for c in checks]
    questions = [bytes(w[12:]) for w in wires]
    start = time.monotonic()
    deadline = start + timeout
    sel = selectors.DefaultSelector()
    states: list[_ServerState] = []
    try:
        for server in servers:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            st = _ServerState(server, sock, checks)
            states.append(st)
            sel.register(sock, selectors.EVENT_READ, st)
            sock.connect((server, port))
        while any(st.pending for st in states):
            now = time.monotonic()
            # Past the budget: wait on only while some server is still loading a zone
            # (answers its old serial, or is silent: nsd may not answer while it swaps
            # in a large reload).
            loading = any(st.loading or st.silent() for st in states)
            if now >= deadline and (now >= start + timeout + grace or not loading):
                break
            for st in states:
                st.send(wires, now)
            end = deadline if now < deadline else start + timeout + grace
            wait = min([RETRY_AFTER, end - now] + [st.next_due(now) for st in states])
            for key, _ in sel.select(timeout=max(0.0, wait)):
                key.data.receive(checks, questions)
    finally:
        for st in states:
            sel.unregister(st.sock)
            st.sock.close()
        sel.close()
    waited = time.monotonic() - start
    failures = []
    for st in states:
        for i in sorted(st.pending):
            if checks[i].gate is not None and checks[i].gate in st.pending:
                continue  # its zone's SOA failed: that failure says it all
            got = st.last.get(i, "no answer")
            if i in st.loading:
                kind = "still loading"
            elif i in st.answered:
                kind = "wrong answer"
            else:
                kind = "no answer"
            failures.append(Failure(st.server, checks[i], got, kind, waited))
    return failures


def ask_serials(
    servers: Sequence[str], port: int, zones: Sequence[str], timeout: float
) -> dict[tuple[str, str], int | None]:
    """Each server's SOA serial of each zone, asked once (sent again once if lost):
    {(server, zone): serial, or None for no answer, an error or no authority}.

    A cheap look for runs that change nothing: a server that does not answer costs
    at most ``timeout``, and one that refuses (nothing listens) costs nothing."""
    checks = [Check(z, "SOA", serial=-1, zone=z) for z in zones]
    out: dict[tuple[str, str], int | None] = {(s, z): None for s in servers for z in zones}
    if not checks:
        return out
    wires = [_query_wire(c) for c in checks]
    questions = [bytes(w[12:]) for w in wires]
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    states: list[_ServerState] = []
    try:
        for server in servers:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            st = _ServerState(server, sock, checks)
            states.append(st)
            sel.register(sock, selectors.EVENT_READ, st)
            try:
                sock.connect((server, port))
            except OSError:
                st.pending.clear()
        while True:
            live = [st for st in states if st.pending - st.answered and not st.refused]
            now = time.monotonic()
            if not live or now >= deadline:
                break
            for st in live:
                st.send(wires, now, once=True)
            for key, _ in sel.select(timeout=max(0.0, min(RESEND_AFTER, deadline - now))):
                key.data.receive(checks, questions)
    finally:
        for st in states:
            sel.unregister(st.sock)
            st.sock.close()
        sel.close()
    for st in states:
        for i, c in enumerate(checks):
            text = st.last.get(i, "")
            if i in st.answered and text.startswith("serial ") and text[7:].isdigit():
                out[(st.server, c.zone)] = int(text[7:])
    return out


class _ServerState:
    """The checks still pending against one server address, and the queries in flight."""

    def __init__(self, server: str, sock: socket.socket, checks: Sequence[Check]) -> None:
        self.server = server
        self.sock = sock
        self.pending = set(range(len(checks)))
        self.waiting: dict[int, list[int]] = {}  # gate -> checks waiting for it
        self.ready: deque[int] = deque()
        for i, c in enumerate(checks):
            if c.gate is None:
                self.ready.append(i)
            else:
                self.waiting.setdefault(c.gate, []).append(i)
        self.later: list[tuple[float, int]] = []  # (not before, check): a heap
        self.inflight: dict[int, tuple[int, float]] = {}  # query id -> (check, sent at)
        self.last: dict[int, str] = {}
        self.answered: set[int] = set()  # checks that got any answer at all
        self.loading: set[int] = set()  # SOA checks last answered with the old serial
        self.refused = False  # nothing listens (ICMP port unreachable)
        self.sent: set[int] = set()  # sent again already (``once``)
        self.gate_of = {i: c.gate for i, c in enumerate(checks) if c.gate is not None}
        self.next_id = 1
        self.next_sweep = 0.0

    def silent(self) -> bool:
        """Checks pending, due (their zone's serial passed) and never answered: just
        released by a serial that came in late, or not answered at all. A refusal
        counts too: nsd may drop its listeners briefly while it swaps in a large
        reload, and the grace this buys is bounded by the size of the change."""
        return any(
            i not in self.answered and self.gate_of.get(i) not in self.pending for i in self.pending
        )

    def next_due(self, now: float) -> float:
        return self.later[0][0] - now if self.later else RETRY_AFTER

    def send(self, wires: list[bytearray], now: float, once: bool = False) -> None:
        """Send what is due; ``once``: each check at most twice (first send, one resend),
        and never again once answered."""
        if now >= self.next_sweep:  # lost datagrams: ask again
            self.next_sweep = now + RESEND_AFTER / 2
            for qid, (i, sent) in list(self.inflight.items()):
                if now - sent > RESEND_AFTER:
                    del self.inflight[qid]
                    if not once or i not in self.sent:
                        self.ready.append(i)
                    if once:
                        self.sent.add(i)
        while self.later and self.later[0][0] <= now:
            self.ready.append(heapq.heappop(self.later)[1])
        while self.ready and len(self.inflight) < WINDOW:
            i = self.ready.popleft()
            if i not in self.pending or (once and i in self.answered):
                continue
            qid = self.next_id
            self.next_id = self.next_id % 65535 + 1
            wire = wires[i]
            wire[0:2] = qid.to_bytes(2, "big")
            try:
                self.sock.send(wire)
            except BlockingIOError:
                self.ready.appendleft(i)
                return
            except OSError as exc:  # e.g. ECONNREFUSED reported from an earlier ICMP
                self.last[i] = exc.strerror or str(exc)
                self.refused = True
                heapq.heappush(self.later, (now + RETRY_AFTER, i))
                continue
            self.inflight[qid] = (i, now)

    def receive(self, checks: Sequence[Check], questions: Sequence[bytes]) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:  # nothing listens there: ICMP port unreachable
                for i, _ in self.inflight.values():
                    self.last[i] = exc.strerror or str(exc)
                self.refused = True
                return
            entry = self.inflight.pop(int.from_bytes(data[:2], "big"), None)
            if entry is None:
                continue  # an answer to a query asked again meanwhile
            i = entry[0]
            answer = dnswire.read(data, questions[i], checks[i].rdtype)
            if answer is None:
                ok, self.last[i] = _evaluate_dnspython(checks[i], data)
            else:
                ok, self.last[i] = _judge(
                    checks[i], answer.rcode, answer.authoritative, answer.values
                )
            self.answered.add(i)
            old = checks[i].old_serial
            if not ok and old is not None and self.last[i] == f"serial {old}":
                self.loading.add(i)
            else:
                self.loading.discard(i)
            if ok:
                self.pending.discard(i)
                self.ready.extend(self.waiting.pop(i, ()))
            else:
                heapq.heappush(self.later, (time.monotonic() + RETRY_AFTER, i))
