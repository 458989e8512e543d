"""HTTPS probes against real servers on loopback: every failure reads well."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kissha.config import HealthConfig
from kissha.lab.certs import CertPair, issue, make_ca
from kissha.lab.webserver import start_in_thread
from kissha.model import Node, ProbeSpec
from kissha.probes import probe_once, run_round

FQDN = "fishfinger.example.org"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertPair, CertPair, CertPair]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    other_ca = make_ca(d / "other", "another CA")
    leaf = issue(ca, d, "node", [FQDN], ["127.0.0.1", "::1"])
    return ca, other_ca, leaf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(pki: tuple[CertPair, CertPair, CertPair]) -> Iterator[tuple[int, CertPair]]:
    ca, _, leaf = pki
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port), ("::1", port)], FQDN, leaf.cert, leaf.key)
    try:
        yield port, ca
    finally:
        srv.close()


def health(timeout: float = 1.0, retries: int = 0) -> HealthConfig:
    return HealthConfig(probes=(), timeout=timeout, retries=retries)


def spec(port: int, ca: CertPair | None, **kw: object) -> ProbeSpec:
    return ProbeSpec("https", "https", port, ca_file=str(ca.cert) if ca else None, **kw)  # type: ignore[arg-type]


NODE = Node("fishfinger", FQDN, "127.0.0.1", "::1")


def test_ok_on_both_families(server: tuple[int, CertPair]) -> None:
    port, ca = server
    for family in ("ipv4", "ipv6"):
        r = probe_once(NODE, family, spec(port, ca), health())  # type: ignore[arg-type]
        assert r.ok, r.detail
        assert r.detail == "HTTP 200, text found"
        assert r.latency_ms is not None and r.cert_not_after is not None


def test_wrong_ca(server: tuple[int, CertPair], pki: tuple[CertPair, CertPair, CertPair]) -> None:
    port, _ = server
    r = probe_once(NODE, "ipv4", spec(port, pki[1]), health())
    assert not r.ok
    assert r.detail.startswith("TLS: certificate verify failed: unable to get local issuer")


def test_hostname_mismatch(server: tuple[int, CertPair]) -> None:
    port, ca = server
    other = Node("blowfish", "blowfish.example.org", "127.0.0.1", "::1")
    r = probe_once(other, "ipv4", spec(port, ca), health())
    assert not r.ok
    assert "TLS: certificate verify failed: Hostname mismatch" in r.detail


def test_text_not_found(server: tuple[int, CertPair]) -> None:
    port, ca = server
    r = probe_once(NODE, "ipv4", spec(port, ca, expect="Welcome to {fqdn}?!"), health())
    assert not r.ok
    assert r.detail == f"HTTP 200 but text not found: expected 'Welcome to {FQDN}?!'"


def test_status(pki: tuple[CertPair, CertPair, CertPair]) -> None:
    ca, _, leaf = pki
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port)], FQDN, leaf.cert, leaf.key, status=503)
    try:
        r = probe_once(NODE, "ipv4", spec(port, ca), health())
    finally:
        srv.close()
    assert (r.ok, r.detail) == (False, "HTTP status 503")


def test_refused_and_retried() -> None:
    r = probe_once(NODE, "ipv4", spec(free_port(), None), health(retries=1))
    assert (r.ok, r.detail, r.attempts) == (False, "connection refused", 2)


def test_timeout_names_the_stage() -> None:
    # A listener that never accepts: TCP connects (the kernel's backlog), TLS never starts.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        r = probe_once(NODE, "ipv4", spec(port, None), health(timeout=0.3))
    assert not r.ok
    assert r.detail == "timeout after 0.3 s during the TLS handshake"


def test_plain_http_on_the_tls_port(tmp_path: Path) -> None:
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port)], FQDN)
    try:
        r = probe_once(NODE, "ipv4", spec(port, None), health())
    finally:
        srv.close()
    assert not r.ok
    assert r.detail.startswith("TLS: ")


def test_round_reports_every_probe_even_when_all_hang() -> None:
    # Several black holes at once: every result comes back, each with its reason.
    holes = []
    try:
        nodes = []
        for i in range(4):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            holes.append(s)
            nodes.append(Node(f"n{i}", f"n{i}.example.org", "127.0.0.1"))
        hc = HealthConfig(
            probes=tuple(spec(h.getsockname()[1], None) for h in holes[:1]),
            timeout=0.2,
            retries=1,
        )
        results = run_round(nodes, hc)
    finally:
        for s in holes:
            s.close()
    assert [r.node for r in results] == ["n0", "n1", "n2", "n3"]
    assert all(not r.ok and r.attempts == 2 for r in results)
    assert all(r.detail == "timeout after 0.2 s during the TLS handshake" for r in results)
