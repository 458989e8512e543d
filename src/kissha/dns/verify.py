"""Verify what authoritative servers answer: many queries in flight, one time budget.

The queries go through kissha's one DNS client (client.py: pipelined UDP per server,
resends, TCP for truncated answers, dnspython for what the wire reader declines). A
zone's name checks are asked only once its SOA check passed on that server: the serial
shows that the server loaded the new file, so until then asking for names only measures
how long a reload takes. An answer that is not yet the expected one is asked again
after ``RETRY_AFTER``.

A server that still answers a zone's *old* serial is still loading it (nsd serves the
old zones while a reload reads the new files), and so is one that answers a name with
its *old* addresses after the new serial: nsd's new server processes take over from the
old ones one by one, so for a moment the same socket answers from both. Such checks
are asked for a while longer (``grace``), so a slow reload of a large change is waited
for, not rolled back.

Only one zone's SOA check (the canary) is asked at first; the others are asked once it
passes. While a server answers old serials, the canary is asked again every
``RETRY_AFTER``, the zones taking turns; the others wait until a canary passes. nsd
swaps in every zone of a reload at once, and every check asked again every 10 ms would
take CPU from the nsd that is loading them: 40 zones answering old for 0.4 s drew 1,466
queries, now fewer than 330 (tests/integration/test_failover_hardening.py). Asking
every zone's serial at once right after the reload only drew old answers too: a
1,000-zone switch of the bench sent ~8,000 queries, now ~6,000. A zone never asked
because no canary passed before verification gave up fails as "not asked".

When verification gives up, each failure says which it was: still loading, a wrong
answer, or no answer (a server whose socket cannot even connect says why).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from kissha.dns.client import Exchange, Reply

RESEND_AFTER = 0.25  # a UDP query unanswered this long is sent again
RETRY_AFTER = 0.01  # an answer that is not yet the expected one is asked for again


@dataclass(frozen=True)
class Check:
    """One expectation: ``serial`` for SOA checks, ``addresses`` for A/AAAA.

    ``gate`` is the index of a check that must pass first (the zone's SOA check);
    ``zone`` the zone it belongs to; ``old_serial`` (SOA checks) and ``old_addresses``
    (A/AAAA checks) what was served before the reload: while the server answers it,
    it is still loading.
    """

    name: str
    rdtype: str
    addresses: frozenset[str] | None = None
    serial: int | None = None
    gate: int | None = None
    zone: str = ""
    old_serial: int | None = None
    old_addresses: frozenset[str] | None = None

    def describe(self) -> str:
        if self.serial is not None:
            want = str(self.serial)
        else:
            want = ", ".join(sorted(self.addresses or ())) or "(nothing)"
        return f"{self.name} {self.rdtype} = {want}"


def _judge(check: Check, reply: Reply) -> tuple[bool, str]:
    """Whether ``reply`` is what ``check`` expects, and what it said, in words."""
    if reply.error is not None or reply.rcode or not reply.authoritative:
        return False, reply.problem or ""
    if check.serial is not None:
        return list(reply.values) == [str(check.serial)], "serial " + (
            ", ".join(reply.values) or "none"
        )
    got = frozenset(reply.values)
    return got == check.addresses, (", ".join(sorted(got)) or "no addresses")


def _old(check: Check, reply: Reply, said: str) -> bool:
    """Whether a server answered what it served before the reload (still loading)."""
    if check.old_serial is not None:
        return said == f"serial {check.old_serial}"
    return (
        check.old_addresses is not None
        and reply.error is None
        and not reply.rcode
        and reply.authoritative
        and frozenset(reply.values) == check.old_addresses
    )


@dataclass(frozen=True)
class Failure:
    """A check that did not pass on one server, and why it was given up."""

    server: str
    check: Check
    got: str
    kind: str  # "still loading" | "not asked" (see verify) | "wrong answer" | "no answer"
    waited: float

    @property
    def zone(self) -> str:
        return self.check.zone

    def __str__(self) -> str:
        c = self.check
        if self.kind == "still loading" and c.serial is None:
            return (
                f"{self.server}: {c.describe()}, still the old {self.got} "
                f"after {self.waited:.1f} s (still loading)"
            )
        if self.kind == "still loading":
            return (
                f"{self.server}: {c.name} still serves the old serial {c.old_serial} "
                f"after {self.waited:.1f} s (still loading; wanted {c.serial})"
            )
        if self.kind == "not asked":  # got: why (verify)
            loading = "still loading; " if "old serials" in self.got else ""
            return (
                f"{self.server}: {c.name} not asked: the server {self.got} "
                f"after {self.waited:.1f} s ({loading}wanted {c.serial})"
            )
        if self.kind == "no answer":
            # why, when the server's socket could not even connect (no route, no IPv6)
            why = f" ({self.got})" if self.got.startswith("cannot connect") else ""
            return f"{self.server}: {c.describe()}, no answer after {self.waited:.1f} s{why}"
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
    start = time.monotonic()
    exchange = Exchange(port, timeout, resend_after=RESEND_AFTER)
    progress = {server: _Progress(checks) for server in servers}
    for server, pr in progress.items():
        for i in pr.first:
            exchange.ask(server, i, checks[i].name, checks[i].rdtype)
        if pr.parked:  # the first zone's serial is the canary from the start
            pr.canary = pr.parked.popleft()
            exchange.ask(server, pr.canary, checks[pr.canary].name, checks[pr.canary].rdtype)

    def on_reply(key: Hashable, server: str, reply: Reply) -> None:
        assert isinstance(key, int)
        pr = progress[server]
        if key not in pr.pending:
            return
        c = checks[key]
        ok, pr.last[key] = _judge(c, reply)
        pr.answered.add(key)
        if not ok and _old(c, reply, pr.last[key]):
            pr.loading.add(key)
        else:
            pr.loading.discard(key)
        if ok:
            pr.pending.discard(key)
            for j in pr.waiting.pop(key, ()):
                exchange.ask(server, j, checks[j].name, checks[j].rdtype)
        still_old = key in pr.loading and c.serial is not None
        if key == pr.canary and not still_old:
            pr.canary = None  # it passed, or says something else: the others are asked
            for j in pr.parked:
                exchange.ask(server, j, checks[j].name, checks[j].rdtype)
            pr.parked.clear()
        if ok:
            return
        if still_old and pr.canary is None:
            pr.canary = key
        elif still_old and key != pr.canary:
            pr.parked.append(key)  # asked again when a canary passes
            return
        elif still_old and pr.parked:
            # The canary in turn: one zone the server never loads must not keep the
            # others waiting (each is asked once a round of them all).
            pr.parked.append(key)
            key = pr.canary = pr.parked.popleft()
            c = checks[key]
        exchange.ask(server, key, c.name, c.rdtype, at=time.monotonic() + RETRY_AFTER)

    def loading() -> bool:
        # Past the budget: wait on only while some server is still loading a zone
        # (answers its old serial, or is silent: nsd may not answer while it swaps in
        # a large reload). A server whose socket could not connect loads nothing.
        return any(
            pr.loading or (exchange.error(server) is None and pr.silent())
            for server, pr in progress.items()
        )

    exchange.run(on_reply, grace=grace, loading=loading)
    waited = time.monotonic() - start
    failures = []
    for server, pr in progress.items():
        error = exchange.error(server)
        # Parked behind a canary that never passed: old serials, or no answer at all.
        parked = set(pr.parked) if not error else set()
        behind = "still served old serials" if pr.loading else "did not answer the first zone asked"
        for i in sorted(pr.pending):
            if checks[i].gate is not None and checks[i].gate in pr.pending:
                continue  # its zone's SOA failed: that failure says it all
            got = error or pr.last.get(i, "no answer")
            if i in pr.loading:
                kind = "still loading"
            elif i in parked and i not in pr.answered:
                kind, got = "not asked", behind
            elif i in pr.answered:
                kind = "wrong answer"
            else:
                kind = "no answer"
            failures.append(Failure(server, checks[i], got, kind, waited))
    return failures


def ask_serials(
    servers: Sequence[str], port: int, zones: Sequence[str], timeout: float
) -> dict[tuple[str, str], int | None]:
    """Each server's SOA serial of each zone, asked once (sent again if lost):
    {(server, zone): serial, or None for no answer, an error or no authority}.

    A cheap look for runs that change nothing: a server that does not answer costs
    at most ``timeout``, and one that refuses (nothing listens) or cannot be reached
    at all costs nothing."""
    out: dict[tuple[str, str], int | None] = {(s, z): None for s in servers for z in zones}
    if not zones:
        return out
    exchange = Exchange(port, timeout, resend_after=RESEND_AFTER, stop_on_refused=True)
    for server in servers:
        for zone in zones:
            exchange.ask(server, zone, zone, "SOA")

    def on_reply(key: Hashable, server: str, reply: Reply) -> None:
        assert isinstance(key, str)
        if reply.problem is None and len(reply.values) == 1 and reply.values[0].isdigit():
            out[(server, key)] = int(reply.values[0])

    exchange.run(on_reply)
    return out


class _Progress:
    """How one server's checks stand: pending, gated on their zone's SOA, answered."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.pending = set(range(len(checks)))
        self.waiting: dict[int, list[int]] = {}  # gate -> checks waiting for it
        self.first: list[int] = []  # the checks asked at once (no gate, no serial)
        # While the server answers old serials: the SOA check asked again, and the
        # others that answered old, waiting for it to pass (see the module docstring).
        # At the start every SOA check waits for the first (verify makes it the canary).
        self.canary: int | None = None
        self.parked: deque[int] = deque()
        for i, c in enumerate(checks):
            if c.gate is not None:
                self.waiting.setdefault(c.gate, []).append(i)
            elif c.serial is not None:
                self.parked.append(i)
            else:
                self.first.append(i)
        self.last: dict[int, str] = {}
        self.answered: set[int] = set()  # checks that got any answer at all
        self.loading: set[int] = set()  # SOA checks last answered with the old serial
        self.gate_of = {i: c.gate for i, c in enumerate(checks) if c.gate is not None}

    def silent(self) -> bool:
        """Checks pending, due (their zone's serial passed) and never answered: just
        released by a serial that came in late, or not answered at all. A refusal
        counts too: nsd may drop its listeners briefly while it swaps in a large
        reload, and the grace this buys is bounded by the size of the change."""
        return any(
            i not in self.answered and self.gate_of.get(i) not in self.pending for i in self.pending
        )
