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
