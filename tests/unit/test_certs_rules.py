"""Pure rules of kissha certs: when a certificate is due, which names, the HTTP-01 route."""

from __future__ import annotations

import pytest

from kissha.certs import due
from kissha.certs.challenge import route
from kissha.certs.due import CertInfo, Window
from kissha.certs.plan import held_names, select
from kissha.config.sites import Site, site_names
from kissha.core.model import Node, Roles

DAY = 86400.0
T0 = 1_800_000_000.0  # a fixed "now": tests never read the clock
CERT_90 = CertInfo(T0 - 10 * DAY, T0 + 80 * DAY, "CN=Test CA", serial="ab")


@pytest.mark.parametrize(
    ("info", "window", "now", "is_due", "reason"),
    [
        (None, None, T0, True, "no certificate"),
        (CertInfo(T0 - DAY, T0 + 89 * DAY, "x", placeholder=True), None, T0, True, "placeholder"),
        (CertInfo(T0 - 90 * DAY, T0 - 1, "x"), None, T0, True, "expired"),
        # 90 days: due when 30 are left (spread 0), i.e. at T0 + 50 days.
        (CERT_90, None, T0 + 50 * DAY - 1, False, "not before"),
        (CERT_90, None, T0 + 50 * DAY, True, "a third of its life left"),
        # The CA's window wins over the lifetime rule, early or late.
        (CERT_90, Window(T0 + 5 * DAY, T0 + 5 * DAY), T0 + 5 * DAY, True, "renewal window"),
        (CERT_90, Window(T0 + 5 * DAY, T0 + 5 * DAY), T0 + 4 * DAY, False, "not before"),
        (CERT_90, Window(T0 + 70 * DAY, T0 + 71 * DAY), T0 + 60 * DAY, False, "not before"),
    ],
)
def test_due_table(
    info: CertInfo | None, window: Window | None, now: float, is_due: bool, reason: str
) -> None:
    d = due.decide(info, window, now, spread=0.0, spread_seconds=DAY)
    assert d.due is is_due
    assert reason in d.reason


def test_a_third_of_the_lifetime_for_short_certificates() -> None:
    # 45-day certificates (Let's Encrypt, 2028): due with 15 days left.
    info = CertInfo(T0, T0 + 45 * DAY, "x")
    assert due.due_at(info, None, 0.0, DAY) == T0 + 30 * DAY


def test_spread_moves_earlier_within_bounds() -> None:
    info = CertInfo(T0, T0 + 90 * DAY, "x")
    base = due.due_at(info, None, 0.0, DAY)
    assert due.due_at(info, None, 0.999, DAY) == pytest.approx(base - 0.999 * DAY)
    # Never more than a tenth of the lifetime, whatever the configured spread.
    assert due.due_at(info, None, 0.999, 365 * DAY) >= base - 9 * DAY
    # With a window: a point inside it.
    w = Window(T0 + 60 * DAY, T0 + 62 * DAY)
    assert due.due_at(info, w, 0.0, DAY) == w.start
    assert due.due_at(info, w, 0.5, DAY) == T0 + 61 * DAY


def test_spread_is_stable_and_differs_between_nodes() -> None:
    a = due.spread_of("fishfinger", "example.org", "ab")
    assert a == due.spread_of("fishfinger", "example.org", "ab")
    assert 0 <= a < 1
    values = {due.spread_of(node, "example.org", "ab") for node in ("a", "b", "c", "d")}
    assert len(values) == 4


def test_back_off_and_force() -> None:
    d = due.decide(None, None, T0, 0.0, DAY, retry_at=T0 + 60)
    assert not d.due and "waiting until" in d.reason
    assert due.decide(None, None, T0 + 60, 0.0, DAY, retry_at=T0 + 60).due
    assert due.decide(CERT_90, None, T0, 0.0, DAY, retry_at=T0 + 60, force=True).due
    assert due.backoff(1, None) == 3600
    assert due.backoff(3, None) == 4 * 3600
    assert due.backoff(30, None) == DAY
    assert due.backoff(1, 120.0) == 120.0  # the CA's Retry-After


NODES = (
    Node("a", "a.example.net", ipv4="203.0.113.1"),
    Node("b", "b.example.net", ipv4="203.0.113.2"),
    Node("c", "c.example.net", ipv4="203.0.113.3"),
)
SITES = (Site("example.org", ("www.example.org",), ("standby.example.org",), ("https",)),)


def _select(strategy: str, me: str, roles: Roles | None, split: str = "") -> dict[str, str]:
    names = held_names(site_names(SITES, NODES), me)
    return {w.name.name: w.why or "request" for w in select(names, strategy, me, roles, split)}


def test_every_node_requests_every_name_and_its_own_fqdn() -> None:
    got = _select("every-node", "b", Roles("a", "c"))
    assert got == {
        "example.org": "request",
        "www.example.org": "request",
        "standby.example.org": "request",
        "b.example.net": "request",  # not a.example.net: it never points at b
    }


def test_when_served_follows_the_roles() -> None:
    assert _select("when-served", "a", Roles("a", "b")) == {
        "example.org": "request",
        "www.example.org": "request",
        "standby.example.org": "not served here (points at b)",
        "a.example.net": "request",
    }
    got = _select("when-served", "b", Roles("a", "b"))
    assert [k for k, v in got.items() if v == "request"] == [
        "standby.example.org",
        "b.example.net",
    ]
    got = _select("when-served", "b", None)
    assert got["example.org"] == "not served here (no roles known yet)"


def test_split_brain_requests_only_the_node_fqdn() -> None:
    got = _select("every-node", "a", Roles("a", "b"), split="a names a, b names b")
    assert got["a.example.net"] == "request"
    assert got["example.org"].startswith("split brain (a names a, b names b)")


CHAIN = ("a.example.net", "b.example.net", "c.example.net")
P = "/.well-known/acme-challenge/"


def _walk(start_host: str, at: str, holder: str) -> list[str]:
    """Follow redirects like a CA: which node answers each hop, by the host name."""
    nodes = dict(zip(CHAIN, CHAIN, strict=True))
    host, seen = start_host, []
    for _ in range(10):
        me = at if host not in nodes else host
        seen.append(me)
        a = route(host, P + "tok", me, CHAIN, lambda t, me=me: me == holder)
        if a.status != 302:
            return [*seen, str(a.status)]
        host = a.location.split("/")[2]
    return [*seen, "loop"]


@pytest.mark.parametrize("at", CHAIN)
@pytest.mark.parametrize("holder", CHAIN)
def test_any_node_reaches_the_holder(at: str, holder: str) -> None:
    hops = _walk("example.org", at, holder)
    assert hops[-1] == "200"
    assert hops[-2] == holder
    assert len(hops) - 1 <= len(CHAIN) + 1


def test_route_details() -> None:
    def no(t: str) -> bool:
        return False

    assert route("example.org", P + "tok", "a.example.net", CHAIN, lambda t: True).status == 200
    a = route("example.org:80", P + "tok", "a.example.net", CHAIN, no)
    assert a.location == "http://b.example.net" + P + "tok"
    # The last node FQDN ends the chain: nobody holds it.
    assert route("c.example.net", P + "tok", "c.example.net", CHAIN, no).status == 404
    assert route("example.org", P + "../etc/passwd", "a.example.net", CHAIN, no).status == 404
    other = route("Example.ORG", "/page?x=1", "a.example.net", CHAIN, no)
    assert (other.status, other.location) == (301, "https://example.org/page?x=1")
