"""Asking every node's nameserver, over every family, for the marked names (I/O):
which names to ask, one nameserver asked through kissha.dns.client, all of them in
threads. Used by kissha status, the page, watch_nameservers and the monitor."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from kissha.config import Config, zone_refs
from kissha.core.model import Family
from kissha.core.zonefile import scan
from kissha.dns.client import ask_each
from kissha.errors import ZoneError
from kissha.observe.verdict import MAX_NAMES, NsView, Question, Reply, normal_nodes, view

# -- which names to ask ----------------------------------------------------------------


def questions(config: Config) -> tuple[list[Question], int]:
    """Per zone its SOA and its first master and standby A and AAAA names, from the
    first zones on, for at most MAX_NAMES names in all; also how many zones were left
    out for that bound. Zones past the bound are counted, never read: a status or a
    page write costs the same with 6 zones or 5,000."""
    out: list[Question] = []
    names = 0
    refs = zone_refs(config.dns)
    for asked, ref in enumerate(refs):
        try:
            marked = scan(ref.read(), ref.name, str(ref.path)).marked
        except ZoneError:
            marked = ()  # check-config and failover report it; the SOA is still asked
        picked: dict[tuple[str, str], Question] = {}
        for rec in marked:
            picked.setdefault(
                (rec.role, rec.rrtype), Question(ref.name, rec.owner, rec.rrtype, rec.role)
            )
        if names + len(picked) > MAX_NAMES:
            return out, len(refs) - asked
        names += len(picked)
        out.append(Question(ref.name, ref.name, "SOA", "soa"))
        out.extend(picked[k] for k in sorted(picked))
    return out, 0


# -- asking one nameserver (I/O) -------------------------------------------------------


def ask(
    address: str, family: Family, port: int, qs: Sequence[Question], timeout: float
) -> dict[Question, Reply] | str:
    """Ask every question at once (kissha.dns.client: resends, TCP for truncated
    answers). Returns a reply per question, or an error in words when the nameserver
    cannot be reached at all."""
    replies, unanswered = ask_each(address, port, {q: (q.name, q.rrtype) for q in qs}, timeout)
    if not replies and qs:
        why = next(iter(unanswered.values()), "timeout")
        return f"timeout after {timeout:g} s" if why == "timeout" else why
    out: dict[Question, Reply] = {}
    for q in qs:
        reply = replies.get(q)
        if reply is None:
            out[q] = unanswered.get(q, "timeout")
        else:
            out[q] = reply.problem or reply.values
    return out


# -- every nameserver at once -----------------------------------------------------


class Asking:
    """Every node's nameserver over every family, asked in threads from construction
    on; ``views()`` waits for the answers (each bounded by ``timeout``)."""

    def __init__(self, config: Config, port: int, timeout: float) -> None:
        qs, self.skipped = questions(config)
        self.nodes = normal_nodes(config.nodes)
        self.targets = [(n, f) for n in self.nodes for f in n.families]
        self.timeout = timeout
        self.replies: list[dict[Question, Reply] | str] = ["not asked"] * len(self.targets)

        def work(i: int) -> None:
            node, family = self.targets[i]
            try:
                self.replies[i] = ask(node.address(family) or "", family, port, qs, timeout)
            except Exception as exc:  # a bug must show as this nameserver's error, not hang
                self.replies[i] = f"error: {type(exc).__name__}: {exc}"

        self.threads = [
            threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(self.targets))
        ]
        for t in self.threads:
            t.start()

    def views(self) -> tuple[NsView, ...]:
        for t in self.threads:
            t.join(self.timeout + 1.0)
        return tuple(
            view(n, f, self.replies[i], self.nodes) for i, (n, f) in enumerate(self.targets)
        )
