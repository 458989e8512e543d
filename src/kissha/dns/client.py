"""kissha's one DNS client: many queries in flight to many servers, one deadline.

Verification after a reload, ``kissha status`` and the dns probe all ask authoritative
servers the same way: one connected UDP socket per server (an ICMP port unreachable
comes back as "connection refused"), every query sent at once up to a window, an
unanswered one sent again after ``resend_after``, a truncated answer asked again over
TCP, and everything bounded by one monotonic deadline. Answers go through the small
wire reader (wire.py, see there why); what it declines is parsed by dnspython, imported
only then, so an answer kissha's reader cannot read is never taken for a failure.

Callers see ``Reply`` values through a callback and may ask again from it (verification
asks until the expected answer comes, gated by the zone's SOA). An answer to an ID that
was since resent is still taken: verification resends every 0.25 s, and a server slower
than that would otherwise never be heard. A server whose socket cannot even connect (no
route, no IPv6 on the host) is not an exception: every query to it is owed, in words.
"""

from __future__ import annotations

import heapq
import ipaddress
import os
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from kissha.dns import wire

RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
WINDOW = 256  # queries in flight per server
FLAG_TC = 0x0200


@dataclass(frozen=True)
class Reply:
    """One server's answer to one query, or why there is none (``error``)."""

    rcode: int = 0
    authoritative: bool = False
    values: tuple[str, ...] = ()  # addresses (compressed text) or SOA serials (decimal)
    error: str | None = None

    @property
    def problem(self) -> str | None:
        """Why this reply is not a usable authoritative answer, in words; None if it is."""
        if self.error is not None:
            return self.error
        if self.rcode:
            return RCODES.get(self.rcode, f"rcode {self.rcode}")
        if not self.authoritative:
            return "not authoritative"
        return None


class _Dnspython:
    """dnspython, imported on first use (~90 ms), for what the wire reader declines."""

    _loaded: _Dnspython | None = None

    def __init__(self) -> None:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rdatatype

        self.exception, self.flags, self.message = dns.exception, dns.flags, dns.message
        self.rdatatype = dns.rdatatype

    @classmethod
    def get(cls) -> _Dnspython:
        if cls._loaded is None:
            cls._loaded = cls()
        return cls._loaded


def build_query(name: str, rdtype: str) -> bytes:
    """A query's wire form with ID 0 (the client sets the ID at each send)."""
    fast = wire.query(0, name, rdtype)
    if fast is not None:
        return fast
    d = _Dnspython.get()
    message = d.message.make_query(name, rdtype)
    message.flags &= ~d.flags.RD  # ask the server itself, as wire.query does
    return bytes(message.to_wire())


def decode(data: bytes, question: bytes, rdtype: str) -> Reply:
    """Read an answer: the fast reader, or dnspython for anything it does not expect."""
    answer = wire.read(data, question, rdtype)
    if answer is not None:
        return Reply(answer.rcode, answer.authoritative, answer.values)
    d = _Dnspython.get()
    try:
        message = d.message.from_wire(data)
    except d.exception.DNSException as exc:
        return Reply(error=f"unparsable answer ({exc})")
    want = d.rdatatype.from_text(rdtype)
    values: list[str] = []
    for rrset in message.answer:
        if rrset.rdtype != want:
            continue
        for rd in rrset:
            if rdtype == "SOA":
                values.append(str(rd.serial))
            else:
                values.append(ipaddress.ip_address(rd.address).compressed)
    aa = bool(message.flags & d.flags.AA)
    return Reply(message.rcode(), aa, tuple(dict.fromkeys(values)))


def ask_tcp(server: str, port: int, query: bytes, qid: int, timeout: float) -> bytes:
    """One query over TCP (for an answer truncated over UDP); raises OSError."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(max(0.001, timeout))
        sock.connect((server, port))
        message = qid.to_bytes(2, "big") + query[2:]
        sock.sendall(struct.pack("!H", len(message)) + message)
        size = struct.unpack("!H", _read_exactly(sock, 2))[0]
        return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("connection closed in the middle of the answer")
        data += chunk
    return data


MAX_OLD_IDS = 16_384  # resent IDs still listened for, per server (the ID space is 65,535)


@dataclass(slots=True)
class _Query:
    key: Hashable
    rdtype: str
    wire: bytes
    last: str = "timeout"
    qid: int = 0  # the ID of its latest send (0: not in flight)
    old: list[int] = field(default_factory=list)  # IDs of earlier sends, still listened for
    answered: bool = False  # taken: copies of it waiting to be resent are dropped


class _Server:
    """The queries still owed by one server, and those in flight."""

    def __init__(self, address: str, port: int, sock: socket.socket | None) -> None:
        self.address, self.port, self.sock = address, port, sock
        self.ready: deque[_Query] = deque()
        self.later: list[tuple[float, int, _Query]] = []  # (not before, tie, query): a heap
        # query id -> (query, sent at), in the order sent: the first is the oldest
        self.inflight: dict[int, tuple[_Query, float]] = {}
        self.old: dict[int, _Query] = {}  # IDs of earlier sends of queries still owed
        self.next_id = int.from_bytes(os.urandom(2), "big") or 1
        self.error: str | None = None  # the socket failed: every query owed fails so

    def owed(self) -> list[_Query]:
        queries = [
            *self.ready,
            *(q for _, _, q in self.later),
            *(q for q, _ in self.inflight.values()),
        ]
        return [q for q in queries if not q.answered]

    def new_id(self) -> int:
        """The next ID in neither the flight nor the old IDs still listened for."""
        while True:
            qid = self.next_id
            self.next_id = self.next_id % 65535 + 1
            if qid not in self.inflight and qid not in self.old:
                return qid

    def take(self, qid: int) -> _Query | None:
        """The query an answer with ID ``qid`` belongs to, forgetting every ID it was
        sent with; None when it is not owed (answered already, or never asked)."""
        entry = self.inflight.pop(qid, None)
        q = entry[0] if entry is not None else self.old.pop(qid, None)
        if q is None or q.answered:
            return None
        # Forget its other IDs, those still its own (one dropped from ``old`` by the
        # bound may have been given to another query since).
        current = self.inflight.get(q.qid)
        if current is not None and current[0] is q:
            del self.inflight[q.qid]
        for old in q.old:
            if self.old.get(old) is q:
                del self.old[old]
        q.qid, q.old, q.answered = 0, [], True
        return q


class Exchange:
    """Queries to many servers over UDP, answered through ``on_reply`` until nothing is
    owed or the deadline passes.

    ``ask`` queues a query (optionally not before a time), ``run`` sends and receives.
    ``on_reply(key, server, reply)`` may call ``ask`` again, e.g. to repeat a query whose
    answer is not yet the expected one. Queries still owed at the deadline are returned
    by ``run`` with their last reply in words.

    ``stop_on_refused``: a server that refuses (nothing listens: ICMP port unreachable)
    is given up at once, its queries owed as "connection refused", instead of being
    asked again until the deadline (a cheap look, where a refusal says enough).
    """

    def __init__(
        self,
        port: int,
        timeout: float,
        resend_after: float = 0.25,
        stop_on_refused: bool = False,
    ) -> None:
        self.port = port
        self.deadline = time.monotonic() + timeout
        self.resend_after = resend_after
        self.stop_on_refused = stop_on_refused
        self.servers: dict[str, _Server] = {}
        self._tie = 0
        self._sel = selectors.DefaultSelector()
        self._wires: dict[tuple[str, str], bytes] = {}  # built once, asked many times

    def ask(
        self, server: str, key: Hashable, name: str, rdtype: str, at: float | None = None
    ) -> None:
        """Queue a query for ``name``/``rdtype`` to ``server``, at monotonic time ``at``."""
        wire = self._wires.get((name, rdtype))
        if wire is None:
            wire = self._wires[(name, rdtype)] = build_query(name, rdtype)
        query = _Query(key, rdtype, wire)
        if at is None:
            srv = self.servers.get(server) or self._server(server)
            srv.ready.append(query)
        else:
            self.again(server, query, at)

    def error(self, server: str) -> str | None:
        """Why ``server`` was given up (its socket failed, or it refused), or None."""
        srv = self.servers.get(server)
        return srv.error if srv is not None else None

    def again(self, server: str, query: _Query, at: float | None = None) -> None:
        srv = self._server(server)
        if at is None:
            srv.ready.append(query)
        else:
            self._tie += 1
            heapq.heappush(srv.later, (at, self._tie, query))

    def _server(self, address: str) -> _Server:
        srv = self.servers.get(address)
        if srv is None:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock: socket.socket | None = None
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect((address, self.port))
            except OSError as exc:  # no route, no IPv6 (not even a socket): every query
                if sock is not None:  # to it is owed, in these words
                    sock.close()
                srv = _Server(address, self.port, None)
                srv.error = f"cannot connect: {_words(exc)}"
            else:
                srv = _Server(address, self.port, sock)
                self._sel.register(sock, selectors.EVENT_READ, srv)
            self.servers[address] = srv
        return srv

    def run(
        self,
        on_reply: Callable[[Hashable, str, Reply], None],
        grace: float = 0.0,
        loading: Callable[[], bool] | None = None,
    ) -> list[tuple[Hashable, str, str]]:
        """Send and receive until nothing is owed or the deadline; returns what is still
        owed as (key, server, last reply in words).

        Past the deadline, runs on for up to ``grace`` seconds more while ``loading()``
        says a server is still loading what it is asked about."""
        try:
            while True:
                now = time.monotonic()
                owed = False
                if now < self.deadline:
                    end = self.deadline
                elif loading is not None and now < self.deadline + grace and loading():
                    end = self.deadline + grace
                else:
                    break
                wait = end - now
                for srv in self.servers.values():
                    if srv.error is not None:
                        continue
                    self._send(srv, now)
                    if srv.ready or srv.later or srv.inflight:
                        owed = True
                    if srv.later:
                        wait = min(wait, srv.later[0][0] - now)
                    if srv.inflight:  # the first in flight is the oldest
                        oldest = next(iter(srv.inflight.values()))[1]
                        wait = min(wait, oldest + self.resend_after - now)
                if not owed:
                    break
                for key, _ in self._sel.select(timeout=max(0.0, wait)):
                    self._receive(key.data, on_reply)
        finally:
            for srv in self.servers.values():
                if srv.sock is not None:
                    self._sel.unregister(srv.sock)
                    srv.sock.close()
            self._sel.close()
        return [
            (q.key, srv.address, srv.error or q.last)
            for srv in self.servers.values()
            for q in srv.owed()
        ]

    def _send(self, srv: _Server, now: float) -> None:
        while srv.inflight:  # in the order sent: stop at the first not yet due
            qid, (q, sent) = next(iter(srv.inflight.items()))
            if now - sent < self.resend_after:
                break
            # Lost, or slow: ask again, and keep listening for this ID (a slow server's
            # answer to it is as good), up to a bound on the IDs kept.
            del srv.inflight[qid]
            q.old.append(qid)
            srv.old[qid] = q
            while len(srv.old) > MAX_OLD_IDS:
                srv.old.pop(next(iter(srv.old)))
            srv.ready.append(q)
        while srv.later and srv.later[0][0] <= now:
            srv.ready.append(heapq.heappop(srv.later)[2])
        while srv.ready and len(srv.inflight) < WINDOW:
            q = srv.ready.popleft()
            if q.answered:  # an earlier send's answer came while it waited here
                continue
            qid = srv.new_id()
            try:
                assert srv.sock is not None  # a server without one is never sent to
                srv.sock.send(qid.to_bytes(2, "big") + q.wire[2:])
            except BlockingIOError:
                srv.ready.appendleft(q)
                return
            except OSError as exc:  # an ICMP error reported from an earlier send
                q.last = _words(exc)
                if self._refused(srv, exc):
                    return
                self._tie += 1
                heapq.heappush(srv.later, (now + self.resend_after, self._tie, q))
                continue
            q.qid = qid
            srv.inflight[qid] = (q, now)

    def _refused(self, srv: _Server, exc: OSError) -> bool:
        """Give ``srv`` up on a refusal, if asked to (``stop_on_refused``)."""
        if self.stop_on_refused and isinstance(exc, ConnectionRefusedError):
            srv.error = _words(exc)
            return True
        return False

    def _receive(self, srv: _Server, on_reply: Callable[[Hashable, str, Reply], None]) -> None:
        while True:
            try:
                assert srv.sock is not None  # only a socket can be ready to read
                data = srv.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:  # nothing listens there: ICMP port unreachable
                for sent, _ in srv.inflight.values():
                    sent.last = _words(exc)
                self._refused(srv, exc)
                return
            if len(data) < 12:
                continue
            qid = int.from_bytes(data[:2], "big")
            q = srv.take(qid)
            if q is None:
                continue  # a second answer to a query already answered, or a stray
            question = q.wire[12:]
            if data[2] << 8 & FLAG_TC:
                try:
                    left = max(0.001, self.deadline - time.monotonic())
                    data = ask_tcp(srv.address, srv.port, q.wire, qid, left)
                except OSError as exc:
                    words = f"truncated over UDP; TCP: {_words(exc)}"
                    retry = _Query(q.key, q.rdtype, q.wire, words)
                    self.again(srv.address, retry, time.monotonic() + self.resend_after)
                    continue
            on_reply(q.key, srv.address, decode(data, question, q.rdtype))  # no longer owed


def _words(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    return exc.strerror or str(exc)


def ask_each(
    server: str, port: int, queries: dict[Hashable, tuple[str, str]], timeout: float
) -> tuple[dict[Hashable, Reply], dict[Hashable, str]]:
    """Ask one server each query once (resent while unanswered); the replies, and for
    each query left unanswered at the deadline why, in words."""
    exchange = Exchange(port, timeout, resend_after=max(0.25, timeout / 3))
    replies: dict[Hashable, Reply] = {}
    for key, (name, rdtype) in queries.items():
        exchange.ask(server, key, name, rdtype)

    def got(key: Hashable, _server: str, reply: Reply) -> None:
        replies[key] = reply

    left = {key: why for key, _, why in exchange.run(got)}
    return replies, left
