"""Probes against real servers on loopback (HTTP(S), molly-brown, nsd, aiosmtpd):
every failure reads well."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kissha import output
from kissha.config import Config, HealthConfig, parse
from kissha.core.model import Decision, Node, ProbeSpec
from kissha.core.report import RunReport
from kissha.engine import failover
from kissha.probes import probe_once, run_round
from kissha.probes.tofu import ProbeContext, der_not_after, fingerprint
from lab.certs import CertPair, issue, make_ca
from lab.nsd import NsdInstance
from lab.webserver import start_in_thread
from tests.helpers import require_isolation

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


def test_the_next_attempt_starts_beside_one_that_hangs() -> None:
    """Attempts overlap: the second connects while the first is still open (it hangs
    without an answer), and its answer wins. Sequential attempts would have closed the
    first at its timeout before the second connected."""
    events: list[str] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(10)

        def serve() -> None:
            first, _ = listener.accept()  # hangs: never answered
            second, _ = listener.accept()
            first.setblocking(False)
            try:  # the request it sent is there; then EOF if the client had closed it
                while first.recv(4096):
                    pass
                events.append("first closed before the second connected")
            except BlockingIOError:
                events.append("first still open")
            with second:
                second.recv(4096)
                second.sendall(b"HTTP/1.0 200 OK\r\n\r\nWelcome to " + FQDN.encode() + b"!\n")
            first.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        hc = HealthConfig(probes=(), timeout=2.0, retries=1)
        http = ProbeSpec("http", "http", listener.getsockname()[1], expect="Welcome to {fqdn}")
        r = probe_once(NODE, "ipv4", http, hc)
        t.join(10)
    assert events == ["first still open"]
    assert (r.ok, r.attempts) == (True, 2), r.detail


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


# --- HTTP -------------------------------------------------------------------------


def http_spec(port: int, **kw: object) -> ProbeSpec:
    return ProbeSpec("http", "http", port, **kw)  # type: ignore[arg-type]


def test_http_ok_status_and_text() -> None:
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port), ("::1", port)], FQDN)
    try:
        for family in ("ipv4", "ipv6"):
            r = probe_once(NODE, family, http_spec(port), health())  # type: ignore[arg-type]
            assert (r.ok, r.detail, r.cert_not_after) == (True, "HTTP 200, text found", None)
        r = probe_once(NODE, "ipv4", http_spec(port, expect="Goodbye"), health())
        assert (r.ok, r.detail) == (False, "HTTP 200 but text not found: expected 'Goodbye'")
        r = probe_once(NODE, "ipv4", http_spec(port, path="/missing.txt"), health())
        assert (r.ok, r.detail) == (False, "HTTP status 404")
    finally:
        srv.close()


# --- certificate expiry -----------------------------------------------------------


def test_https_certificate_near_expiry_warns(
    pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    ca = pki[0]
    soon = issue(ca, tmp_path, "soon", [FQDN], ["127.0.0.1"], days=3)
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port)], FQDN, soon.cert, soon.key)
    try:
        hc = HealthConfig(probes=(), timeout=1.0, retries=0, cert_warn_days=14)
        r = probe_once(NODE, "ipv4", spec(port, ca), hc)
        quiet = probe_once(NODE, "ipv4", spec(port, ca), replace(hc, cert_warn_days=2))
    finally:
        srv.close()
    assert r.ok and r.detail == "HTTP 200, text found"
    assert r.cert_not_after is not None
    day = time.strftime("%Y-%m-%d", time.gmtime(r.cert_not_after))
    assert r.warning == f"certificate expires in 3 days ({day})"
    assert quiet.ok and quiet.warning is None
    # The report shows the warning after the detail; JSON carries it too.
    report = RunReport(time.time(), True, (r,), Decision(None), None)
    assert f"HTTP 200, text found; warning: certificate expires in 3 days ({day})" in output.text(
        report
    )
    assert output.as_json(report)["probes"][0]["warning"] == r.warning


# --- Gemini: a real molly-brown -----------------------------------------------------


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"molly-brown exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    pytest.fail(f"molly-brown did not listen on port {port}: {log.read_text()}")


@pytest.fixture(scope="module")
def molly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[CertPair], int]]:
    """Start molly-brown with a certificate (once per certificate); returns its port."""
    require_isolation()  # molly-brown listens on every interface
    root = tmp_path_factory.mktemp("molly")
    docs = root / "docs"
    docs.mkdir()
    (docs / "index.gmi").write_text(f"# Welcome to {FQDN}\n")
    running: dict[Path, tuple[subprocess.Popen[bytes], int]] = {}

    def start(cert: CertPair) -> int:
        if cert.cert in running:
            return running[cert.cert][1]
        port = free_port()
        d = root / str(port)
        d.mkdir()
        conf = d / "molly.conf"
        conf.write_text(
            f'Port = {port}\nHostname = "{FQDN}"\nCertPath = "{cert.cert}"\n'
            f'KeyPath = "{cert.key}"\nDocBase = "{docs}"\n'
            f'AccessLog = "{d / "access.log"}"\nErrorLog = "{d / "error.log"}"\n'
        )
        out = d / "out.log"
        with out.open("wb") as log:
            process = subprocess.Popen(
                ["molly-brown", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        running[cert.cert] = (process, port)
        _wait_listening(port, process, out)
        return port

    try:
        yield start
    finally:
        for process, _ in running.values():
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def gemini(port: int, **kw: object) -> ProbeSpec:
    for key, default in (("tls", "tofu"), ("path", "/"), ("expect", "")):
        kw.setdefault(key, default)
    return ProbeSpec("gemini", "gemini", port, **kw)  # type: ignore[arg-type]


def der(cert: CertPair) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert.read_text())


def short(fp: str) -> str:
    return fp[:23] + "…"


def test_gemini_tofu_learns_on_first_use_then_trusts(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    leaf = pki[2]
    port = molly(leaf)
    fp = fingerprint(der(leaf))
    context = ProbeContext.load(tmp_path)
    r = probe_once(NODE, "ipv4", gemini(port), health(), context)
    assert r.ok, r.detail
    assert r.detail == f"Gemini 20 text/gemini (TOFU: first use, learned {short(fp)})"
    assert r.cert_not_after == der_not_after(der(leaf))
    entry = context.tofu["fishfinger"]["gemini"]
    assert entry["fingerprint"] == fp
    assert entry["not_after"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.cert_not_after))
    context.save()
    stored = json.loads((tmp_path / "tofu.json").read_text())
    assert stored == {"version": 1, "fingerprints": {"fishfinger": {"gemini": entry}}}

    # A later run: the same certificate is trusted, over either family.
    again = ProbeContext.load(tmp_path)
    for family in ("ipv4", "ipv6"):
        r = probe_once(NODE, family, gemini(port), health(), again)  # type: ignore[arg-type]
        assert (r.ok, r.detail) == (True, "Gemini 20 text/gemini")
    assert not again.learned


def test_gemini_tofu_a_changed_certificate_fails(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    ca, _, leaf = pki
    other = issue(ca, tmp_path / "other", "other", [FQDN], ["127.0.0.1", "::1"])
    context = ProbeContext(tmp_path)
    assert probe_once(NODE, "ipv4", gemini(molly(leaf)), health(), context).ok
    r = probe_once(NODE, "ipv4", gemini(molly(other)), health(), context)
    assert not r.ok
    assert r.detail == (
        f"TLS: certificate changed since first seen (TOFU): {short(fingerprint(der(other)))}; "
        f"if expected, remove the entry from {tmp_path / 'tofu.json'}"
    )
    assert context.tofu["fishfinger"]["gemini"]["fingerprint"] == fingerprint(der(leaf))


def test_gemini_tofu_relearns_when_the_old_certificate_expired(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    ca, _, leaf = pki
    renewed = issue(ca, tmp_path / "renewed", "renewed", [FQDN], ["127.0.0.1", "::1"])
    context = ProbeContext(tmp_path)
    assert probe_once(NODE, "ipv4", gemini(molly(leaf)), health(), context).ok
    context.tofu["fishfinger"]["gemini"]["not_after"] = "2020-01-01T00:00:00Z"
    context.learned = False
    r = probe_once(NODE, "ipv4", gemini(molly(renewed)), health(), context)
    fp = fingerprint(der(renewed))
    assert (r.ok, r.detail) == (True, "Gemini 20 text/gemini")
    assert r.warning == f"certificate changed (the old one expired): now {short(fp)}"
    assert context.tofu["fishfinger"]["gemini"]["fingerprint"] == fp
    assert context.learned


def test_gemini_tofu_expired_certificate_fails(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    expired = issue(pki[0], tmp_path, "expired", [FQDN], ["127.0.0.1"], days=-1)
    context = ProbeContext(tmp_path)
    r = probe_once(NODE, "ipv4", gemini(molly(expired)), health(), context)
    day = time.strftime("%Y-%m-%d", time.gmtime(der_not_after(der(expired))))
    assert (r.ok, r.detail) == (False, f"TLS: certificate expired on {day}")
    assert context.tofu == {} and not context.learned


def test_gemini_ca_mode_verifies_chain_and_hostname(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair]
) -> None:
    ca, other_ca, leaf = pki
    port = molly(leaf)
    r = probe_once(NODE, "ipv6", gemini(port, tls="ca", ca_file=str(ca.cert)), health())
    assert (r.ok, r.detail) == (True, "Gemini 20 text/gemini")
    assert r.cert_not_after == der_not_after(der(leaf))
    blowfish = Node("blowfish", "blowfish.example.org", "127.0.0.1", "::1")
    r = probe_once(blowfish, "ipv4", gemini(port, tls="ca", ca_file=str(ca.cert)), health())
    assert not r.ok
    assert "TLS: certificate verify failed: Hostname mismatch" in r.detail
    r = probe_once(NODE, "ipv4", gemini(port, tls="ca", ca_file=str(other_ca.cert)), health())
    assert r.detail.startswith("TLS: certificate verify failed: unable to get local issuer")


def test_gemini_pinned(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair]
) -> None:
    leaf = pki[2]
    port = molly(leaf)
    fp = fingerprint(der(leaf))
    pinned = gemini(port, tls="pinned", fingerprints=(("fishfinger", fp),))
    r = probe_once(NODE, "ipv4", pinned, health())
    assert (r.ok, r.detail) == (True, "Gemini 20 text/gemini")
    wrong = "sha256:" + "0" * 64
    r = probe_once(NODE, "ipv4", replace(pinned, fingerprints=(("fishfinger", wrong),)), health())
    assert not r.ok
    assert r.detail == f"TLS: certificate {short(fp)} does not match (pinned {short(wrong)})"


def test_gemini_status_and_text(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair]
) -> None:
    port = molly(pki[2])
    known = ProbeContext()  # one round's memory: the first probe learns the certificate
    r = probe_once(NODE, "ipv4", gemini(port, path="/missing.gmi"), health(), known)
    assert (r.ok, r.detail) == (False, "Gemini status 51 (not found)")
    r = probe_once(NODE, "ipv4", gemini(port, expect="Welcome to {fqdn}"), health(), known)
    assert (r.ok, r.detail) == (True, "Gemini 20, text found")
    r = probe_once(NODE, "ipv4", gemini(port, expect="Goodbye"), health(), known)
    assert (r.ok, r.detail) == (False, "Gemini 20 but text not found: expected 'Goodbye'")
    # molly-brown serves one host name and refuses requests for any other.
    blowfish = Node("blowfish", "blowfish.example.org", "127.0.0.1", "::1")
    r = probe_once(blowfish, "ipv4", gemini(port), health())
    assert (r.ok, r.detail) == (False, "Gemini status 53 (proxy request refused)")


def test_gemini_on_a_plain_tcp_port_fails_in_the_handshake() -> None:
    port = free_port()
    srv = start_in_thread([("127.0.0.1", port)], FQDN)
    try:
        r = probe_once(NODE, "ipv4", gemini(port), health())
    finally:
        srv.close()
    assert not r.ok and r.detail.startswith("TLS: ")


def _gemini_config(tmp_path: Path, port: int) -> Config:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.org.zone").write_text(
        "$ORIGIN example.org.\n@ 300 IN SOA ns1 hostmaster 1 3600 900 604800 300\n"
        "@ 300 IN NS ns1\nns1 300 IN A 127.0.0.1\n"
        "@ 300 IN A 127.0.0.1 ; Enable failover\n"
        "standby 300 IN A 127.0.0.2 ; Enable failover\n"
    )
    return parse(
        {
            "state_dir": str(tmp_path / "state"),
            "rotation": "off",
            "nodes": {
                "fishfinger": {"fqdn": FQDN, "ipv4": "127.0.0.1"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "127.0.0.2"},
            },
            "health": {"timeout": 1.0, "probes": [{"type": "gemini", "port": port}]},
            "dns": {"zones_dir": str(zones)},
        }
    )


class _NoServer:
    """The DNS server side of a run whose zones do not change."""

    def recover(self) -> list[str]:
        return []

    def precheck(self, plans: object) -> list[str]:
        return []

    def converge(self, plans: object, broken: object = ()) -> tuple[list[str], list[str]]:
        return [], []


def test_failover_keeps_tofu_only_from_real_runs(
    molly: Callable[[CertPair], int], pki: tuple[CertPair, CertPair, CertPair], tmp_path: Path
) -> None:
    config = _gemini_config(tmp_path, molly(pki[2]))
    tofu = tmp_path / "state" / "tofu.json"
    dry = failover.run(config, time.time(), dry_run=True)
    assert not tofu.exists()
    assert [r.ok for r in dry.probes] == [True, False]  # blowfish: "53", another host
    assert dry.probes[0].detail.startswith("Gemini 20 text/gemini (TOFU: first use, learned")
    report = failover.run(config, time.time(), server=_NoServer())  # type: ignore[arg-type]
    assert report.outcome == "unchanged", report.message
    # Both nodes' certificates are learned at the handshake, whatever the status.
    assert set(json.loads(tofu.read_text())["fingerprints"]) == {"fishfinger", "blowfish"}
    again = failover.run(config, time.time(), dry_run=True)
    assert again.probes[0].detail == "Gemini 20 text/gemini"


# --- TCP ----------------------------------------------------------------------------


def test_tcp_connects_or_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        r = probe_once(NODE, "ipv4", ProbeSpec("ssh", "tcp", s.getsockname()[1]), health())
    assert (r.ok, r.detail) == (True, "connected")
    r = probe_once(NODE, "ipv4", ProbeSpec("ssh", "tcp", free_port()), health())
    assert (r.ok, r.detail) == (False, "connection refused")


def test_round_runs_only_each_nodes_probes() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        hc = HealthConfig(
            probes=(
                ProbeSpec("a", "tcp", s.getsockname()[1]),
                ProbeSpec("b", "tcp", free_port(), required=False),
            ),
            timeout=1.0,
            retries=0,
        )
        nodes = [
            Node("n0", "n0.example.org", "127.0.0.1", probes=("a",)),
            Node("n1", "n1.example.org", "127.0.0.1", "::1"),
        ]
        results = run_round(nodes, hc)
    assert [(r.node, r.probe, r.family, r.ok, r.required) for r in results] == [
        ("n0", "a", "ipv4", True, True),
        ("n1", "a", "ipv4", True, True),
        ("n1", "b", "ipv4", False, False),
        ("n1", "a", "ipv6", False, True),  # the listener is IPv4 only
        ("n1", "b", "ipv6", False, False),
    ]


# --- DNS: a real nsd ------------------------------------------------------------------

ZONE = """$ORIGIN example.test.
@    3600 IN SOA ns1 hostmaster 2024010101 3600 900 604800 300
@    3600 IN NS  ns1
ns1  3600 IN A   127.0.0.1
www  3600 IN A   127.0.0.1
"""


@pytest.fixture(scope="module")
def nsd() -> Iterator[int]:
    d = Path(tempfile.mkdtemp(prefix="kissha-", dir="/tmp"))  # short: nsd's socket path
    try:
        (d / "example.test.zone").write_text(ZONE)
        port = free_port()
        with NsdInstance(
            d, [("127.0.0.1", port), ("::1", port)], {"example.test": "example.test.zone"}
        ):
            yield port
    finally:
        shutil.rmtree(d, ignore_errors=True)


def dns_spec(port: int, zone: str = "example.test") -> ProbeSpec:
    return ProbeSpec("dns", "dns", port, zone=zone)


def test_dns_soa_answered_authoritatively(nsd: int) -> None:
    for family in ("ipv4", "ipv6"):
        r = probe_once(NODE, family, dns_spec(nsd), health())  # type: ignore[arg-type]
        assert (r.ok, r.detail) == (True, "SOA serial 2024010101, authoritative")


def test_dns_failures_in_words(nsd: int) -> None:
    r = probe_once(NODE, "ipv4", dns_spec(nsd, "other.test"), health())
    assert (r.ok, r.detail) == (False, "REFUSED")
    r = probe_once(NODE, "ipv4", dns_spec(nsd, "www.example.test"), health())
    assert (r.ok, r.detail) == (False, "no SOA in the answer for www.example.test")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # nothing ever answers
        s.bind(("127.0.0.1", 0))
        r = probe_once(NODE, "ipv4", dns_spec(s.getsockname()[1]), health(timeout=0.3))
    assert (r.ok, r.detail) == (False, "timeout after 0.3 s waiting for the answer")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    r = probe_once(NODE, "ipv4", dns_spec(closed), health())
    assert (r.ok, r.detail) == (False, "connection refused")


def test_dns_resends_a_lost_query() -> None:
    # A server that ignores the first datagram, as if it had been lost, answers the second.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)

        def serve() -> None:
            s.recvfrom(512)
            query, peer = s.recvfrom(512)
            header = query[:2] + bytes([0x84, 0x00]) + b"\x00\x01\x00\x01\x00\x00\x00\x00"
            soa = (
                b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x0e\x10\x00\x16"
                + b"\x00\x00"
                + struct.pack("!IIIII", 7, 3600, 900, 604800, 300)
            )
            s.sendto(header + query[12:] + soa, peer)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        r = probe_once(NODE, "ipv4", dns_spec(s.getsockname()[1]), health(timeout=2.0))
        t.join(5)
    assert (r.ok, r.detail) == (True, "SOA serial 7, authoritative")


# --- SMTP -----------------------------------------------------------------------------


def test_smtp_banner_from_aiosmtpd() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    controller = Controller(
        Sink(), hostname="127.0.0.1", port=free_port(), server_hostname="mail.example.test"
    )
    controller.start()
    try:
        r = probe_once(NODE, "ipv4", ProbeSpec("smtp", "smtp", controller.port), health())
    finally:
        controller.stop()
    assert r.ok, r.detail
    assert r.detail.startswith("220 mail.example.test")


def _one_shot_server(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.settimeout(5)

    def serve() -> None:
        conn, _ = s.accept()
        with conn:
            conn.settimeout(5)
            conn.sendall(reply)
            with contextlib.suppress(OSError):
                if not reply:
                    return  # hang up at once
                conn.recv(64)  # QUIT, then the probe hangs up

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return s, t


@pytest.mark.parametrize(
    ("reply", "ok", "detail"),
    [
        (b"554 go away\r\n", False, "SMTP banner 554 go away"),
        (
            b"220-mail.example.test ESMTP\r\n220-still here\r\n220 ready\r\n",
            True,
            "220 mail.example.test ESMTP",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n", False, "not an SMTP banner: 'SSH-2.0-OpenSSH_9.2'"),
        (b"", False, "connection closed without a banner"),
    ],
)
def test_smtp_banners(reply: bytes, ok: bool, detail: str) -> None:
    s, t = _one_shot_server(reply)
    with s:
        r = probe_once(NODE, "ipv4", ProbeSpec("smtp", "smtp", s.getsockname()[1]), health())
        t.join(5)
    assert (r.ok, r.detail) == (ok, detail)
