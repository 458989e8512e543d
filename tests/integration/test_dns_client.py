"""kissha.dns.client against servers on loopback: real nsd, and small servers that send
what nsd rarely does (a truncated UDP answer, an answer the fast reader declines)."""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rrset
import pytest

from kissha.dns.client import Exchange, Reply, ask_each
from lab.nsd import NsdInstance
from lab.site import LoopbackSite
from tests.helpers import require_isolation

pytestmark = pytest.mark.integration

ZONE = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 2024010101 3600 900 604800 300
  IN NS ns1
ns1 IN A 127.0.0.1
www IN A 127.0.0.11
www IN AAAA 2001:db8:1::11
"""


@pytest.fixture(scope="module")
def nsd() -> Iterator[int]:
    require_isolation()
    d = Path(tempfile.mkdtemp(prefix="kissha-", dir="/tmp"))  # short: nsd's socket path
    try:
        (d / "example.test.zone").write_text(ZONE)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with NsdInstance(
            d, [("127.0.0.1", port), ("::1", port)], {"example.test": "example.test.zone"}
        ):
            yield port
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_many_queries_to_two_servers_at_once(nsd: int) -> None:
    exchange = Exchange(nsd, timeout=2)
    asked = [("www.example.test", "A"), ("www.example.test", "AAAA"), ("example.test", "SOA")]
    for server in ("127.0.0.1", "::1"):
        for name, rdtype in asked:
            exchange.ask(server, (server, name, rdtype), name, rdtype)
    got: dict[object, Reply] = {}
    left = exchange.run(lambda key, server, reply: got.__setitem__(key, reply))
    assert left == []
    assert got[("::1", "www.example.test", "A")] == Reply(0, True, ("127.0.0.11",))
    assert got[("127.0.0.1", "www.example.test", "AAAA")].values == ("2001:db8:1::11",)
    assert got[("127.0.0.1", "example.test", "SOA")].values == ("2024010101",)


def test_asking_again_from_the_callback_until_an_answer_is_right(nsd: int) -> None:
    exchange = Exchange(nsd, timeout=1)
    exchange.ask("127.0.0.1", "soa", "example.test", "SOA")
    seen: list[Reply] = []

    def again(key: object, server: str, reply: Reply) -> None:
        seen.append(reply)
        if len(seen) < 3:  # "not yet the expected serial": ask again
            exchange.ask(server, key, "example.test", "SOA")  # type: ignore[arg-type]

    assert exchange.run(again) == []
    assert len(seen) == 3


def test_refused_rcode_and_closed_port_in_words(nsd: int) -> None:
    replies, left = ask_each("127.0.0.1", nsd, {"q": ("other.test", "SOA")}, 2)
    assert replies["q"].problem == "REFUSED" and left == {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    replies, left = ask_each("127.0.0.1", closed, {"q": ("example.test", "SOA")}, 1)
    assert replies == {} and left == {"q": "connection refused"}


def _soa_response(query: bytes, serial: int) -> dns.message.Message:
    q = dns.message.from_wire(query)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    r.answer.append(
        dns.rrset.from_text(q.question[0].name, 300, "IN", "SOA", f"ns1. h. {serial} 1 1 1 1")
    )
    return r


def test_truncated_udp_answer_is_asked_again_over_tcp() -> None:
    """A server whose UDP answers are all truncated (TC) answers in full over TCP."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(1)
    udp.settimeout(5)
    tcp.settimeout(5)

    def serve() -> None:
        query, peer = udp.recvfrom(512)
        r = dns.message.make_response(dns.message.from_wire(query))
        r.flags |= dns.flags.TC
        udp.sendto(r.to_wire(), peer)
        conn, _ = tcp.accept()
        with conn:
            size = struct.unpack("!H", conn.recv(2))[0]
            full = _soa_response(conn.recv(size), 42).to_wire()
            conn.sendall(struct.pack("!H", len(full)) + full)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        replies, left = ask_each("127.0.0.1", port, {"q": ("example.test", "SOA")}, 3)
    finally:
        t.join(5)
        udp.close()
        tcp.close()
    assert left == {}
    assert replies["q"] == Reply(0, True, ("42",))


def test_an_answer_the_fast_reader_declines_is_read_by_dnspython() -> None:
    """Two copies of the question (QDCOUNT 2): wire.read declines it, dnspython reads it;
    before the one client, the dns probe called that "an answer kissha cannot read" and
    counted it against the node."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)

        def serve() -> None:
            query, peer = s.recvfrom(512)
            r = _soa_response(query, 7)
            r.question.append(r.question[0])
            s.sendto(r.to_wire(), peer)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        replies, left = ask_each("127.0.0.1", s.getsockname()[1], {"q": ("x.test", "SOA")}, 2)
        t.join(5)
    assert left == {}
    assert replies["q"] == Reply(0, True, ("7",))


def test_an_answer_to_a_resent_id_is_still_taken() -> None:
    """A server slower than the resend interval: every query is sent again before its
    answer comes, so the answer carries an ID since replaced. Before, the client dropped
    it as stale and, resending every 0.25 s, never heard a server taking 0.6 s."""
    from kissha.dns.verify import Check, verify

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.1)
        stop = threading.Event()
        timers: list[threading.Timer] = []
        received: list[int] = []

        def serve() -> None:
            while not stop.is_set():
                try:
                    query, peer = s.recvfrom(512)
                except TimeoutError:
                    continue
                received.append(int.from_bytes(query[:2], "big"))
                answer = _soa_response(query, 6).to_wire()
                timer = threading.Timer(0.6, s.sendto, (answer, peer))
                timers.append(timer)
                timer.start()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            port = s.getsockname()[1]
            exchange = Exchange(port, timeout=3, resend_after=0.25)
            exchange.ask("127.0.0.1", "q", "example.test", "SOA")
            got: list[Reply] = []
            left = exchange.run(lambda key, server, reply: got.append(reply))
            failures = verify(["127.0.0.1"], port, [Check("example.test.", "SOA", serial=6)], 3)
        finally:
            stop.set()
            t.join(5)
            for timer in timers:
                timer.join(5)
    assert left == [] and got == [Reply(0, True, ("6",))]  # taken once, not once per ID
    assert failures == []
    assert len(set(received)) > 2  # it was resent meanwhile, under new IDs


def test_a_server_whose_socket_cannot_connect_is_a_failure_in_words() -> None:
    """An address the socket cannot even connect to (here a link-local address without
    a scope: no traffic leaves; likewise ::1 on a host without IPv6) is that server's
    failure in words, never an exception; the other servers are verified as usual and
    nothing waits for the unreachable one."""
    import time

    from kissha.dns.verify import Check, ask_serials, verify

    replies, left = ask_each("fe80::1", 53, {"q": ("example.test", "SOA")}, 2)
    assert replies == {} and left["q"].startswith("cannot connect: ")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        port = s.getsockname()[1]

        def serve() -> None:
            for _ in range(2):  # the SOA check, then ask_serials' look
                query, peer = s.recvfrom(512)
                s.sendto(_soa_response(query, 6).to_wire(), peer)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        checks = [
            Check("example.test.", "SOA", serial=6, zone="example.test.", old_serial=5),
            Check("www.example.test.", "A", frozenset({"198.51.100.1"}), gate=0),
        ]
        t0 = time.monotonic()
        failures = verify(["127.0.0.1", "fe80::1"], port, checks[:1], 2, grace=5)
        waited = time.monotonic() - t0
        serials = ask_serials(["127.0.0.1", "fe80::1"], port, ["example.test."], 2)
        t.join(5)
    assert waited < 1  # no grace for a server that cannot load anything
    assert [str(f) for f in failures] == [
        f"fe80::1: example.test. SOA = 6, no answer after {failures[0].waited:.1f} s "
        f"({failures[0].got})"
    ]
    assert failures[0].got.startswith("cannot connect: ") and failures[0].kind == "no answer"
    assert serials == {("127.0.0.1", "example.test."): 6, ("fe80::1", "example.test."): None}
    # the names behind a zone's SOA check are not reported on their own
    failures = verify(["fe80::1"], port, checks, 1)
    assert [f.check.name for f in failures] == ["example.test."]


def test_a_verify_server_that_cannot_connect_rolls_back_in_words(site: LoopbackSite) -> None:
    """kissha failover with a verify_servers address the socket cannot connect to: the
    change is rolled back (exit 3) with that server's reason, not an internal error (70)."""
    text = site.config_text(failures_before_demotion=1)
    site.config_path.write_text(
        text.replace('verify_servers = ["127.0.0.1", "::1"]', 'verify_servers = ["fe80::1"]')
    )
    assert "fe80::1" in site.config_path.read_text()
    site.stop_web("fishfinger")
    r = site.kissha("failover", now="2026-11-23T12:00:00Z")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "fe80::1: example.org. SOA = " in r.stdout
    assert "(cannot connect: " in r.stdout
