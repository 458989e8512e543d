"""ARI (RFC 9773 renewal windows) against a small fake ACME directory.

Debian's pebble 2.4 has no renewalInfo, so this fake serves just enough ACME (directory,
nonces, an account, renewal info, and a rate-limited newOrder) to check that kissha
asks for the window, renews inside it, and honours Retry-After. It is a stand-in for
what cannot run here, not a CA.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.integration

T0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
NAME = "example.org"


class FakeCa(ThreadingHTTPServer):
    window: tuple[datetime.datetime, datetime.datetime]
    requests: list[str]


class Handler(BaseHTTPRequestHandler):
    server: FakeCa

    def _send(
        self,
        status: int,
        body: object = None,
        headers: dict[str, str] | None = None,
        kind: str = "application/json",
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Replay-Nonce", base64.urlsafe_b64encode(b"n" * 16).decode().rstrip("="))
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        self.server.requests.append(f"HEAD {self.path}")
        self._send(200)

    def do_GET(self) -> None:
        self.server.requests.append(f"GET {self.path}")
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/dir":
            self._send(
                200,
                {
                    "newNonce": f"{base}/nonce",
                    "newAccount": f"{base}/acct",
                    "newOrder": f"{base}/order",
                    "renewalInfo": f"{base}/ari",
                },
            )
        elif self.path.startswith("/ari/"):
            start, end = self.server.window
            self._send(
                200,
                {"suggestedWindow": {"start": start.isoformat(), "end": end.isoformat()}},
                {"Retry-After": "21600"},
            )
        else:
            self._send(404)

    def do_POST(self) -> None:
        self.server.requests.append(f"POST {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/acct":
            self._send(201, {"status": "valid"}, {"Location": f"{base}/acct/1"})
        else:  # newOrder: rate limited
            self._send(
                429,
                {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many new orders"},
                {"Retry-After": "3600"},
                kind="application/problem+json",
            )

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ca(isolation: None) -> Iterator[FakeCa]:
    server = FakeCa(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _issue(root: Path) -> x509.Certificate:
    """A 90-day certificate for NAME from a throwaway CA, with the AKI ARI needs."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(T0)
        .not_valid_after(T0 + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (root / "ssl/private").mkdir(parents=True)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (root / f"ssl/{NAME}.crt").write_bytes(pem)
    (root / f"ssl/{NAME}.fullchain.pem").write_bytes(pem)
    (root / f"ssl/private/{NAME}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert


def _run(config: Path, now: datetime.datetime) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kissha",
            "-c",
            str(config),
            "certs",
            "--json",
            "--now",
            now.isoformat(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 3), done.stdout + done.stderr
    return {n["name"]: n for n in json.loads(done.stdout)["names"]}


def test_renewal_window_asked_used_and_retry_after_honoured(ca: FakeCa, tmp_path: Path) -> None:
    cert = _issue(tmp_path)
    port = ca.server_address[1]
    config = tmp_path / "kissha.toml"
    config.write_text(f"""
state_dir = "{tmp_path}/state"
[nodes.a]
fqdn = "a.example.net"
ipv4 = "203.0.113.1"
[nodes.b]
fqdn = "b.example.net"
ipv4 = "203.0.113.2"
[dns]
zones_dir = "{tmp_path}"
[[sites]]
name = "{NAME}"
aliases = []
standby = []
[certs]
node = "a"
directory = "http://127.0.0.1:{port}/dir"
cert = "{tmp_path}/ssl/{{name}}.crt"
key = "{tmp_path}/ssl/private/{{name}}.key"
fullchain = "{tmp_path}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{tmp_path}/acme"
exclude = ["a.example.net"]
""")
    # Day 10 of 90: the lifetime rule says day 60, but the CA's window has already
    # begun and ended (as after a revocation): kissha asks for it and renews now.
    now = T0 + datetime.timedelta(days=10, hours=1)
    ca.window = (T0 + datetime.timedelta(days=9), T0 + datetime.timedelta(days=10))
    got = _run(config, now)[NAME]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    cert_id = f"{b64(aki.key_identifier)}.{b64(bytes.fromhex('0087654321'))}"
    assert f"GET /ari/{cert_id}" in ca.requests
    assert "POST /order" in ca.requests  # it tried to renew, inside the window
    assert got["action"] == "failed"
    assert "rateLimited: too many new orders" in got["error"]
    # Retry-After (1 h) is honoured: a run 30 minutes later asks nothing at all.
    ca.requests.clear()
    got = _run(config, now + datetime.timedelta(minutes=30))[NAME]
    assert ca.requests == []
    assert "waiting until" in got["reason"]
    records = json.loads((tmp_path / "state/certs.json").read_text())["names"][NAME]
    assert records["window"] == [w.timestamp() for w in ca.window]


def test_a_window_in_the_future_waits_and_is_not_asked_again_before_retry_after(
    ca: FakeCa, tmp_path: Path
) -> None:
    _issue(tmp_path)
    port = ca.server_address[1]
    config = tmp_path / "kissha.toml"
    config.write_text(f"""
state_dir = "{tmp_path}/state"
[nodes.a]
fqdn = "a.example.net"
ipv4 = "203.0.113.1"
[nodes.b]
fqdn = "b.example.net"
ipv4 = "203.0.113.2"
[dns]
zones_dir = "{tmp_path}"
[[sites]]
name = "{NAME}"
aliases = []
standby = []
[certs]
node = "a"
directory = "http://127.0.0.1:{port}/dir"
cert = "{tmp_path}/ssl/{{name}}.crt"
key = "{tmp_path}/ssl/private/{{name}}.key"
fullchain = "{tmp_path}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{tmp_path}/acme"
exclude = ["a.example.net"]
""")
    ca.window = (T0 + datetime.timedelta(days=40), T0 + datetime.timedelta(days=42))
    now = T0 + datetime.timedelta(days=10)
    assert _run(config, now)[NAME]["action"] == "unchanged"
    assert any(r.startswith("GET /ari/") for r in ca.requests)
    assert "POST /order" not in ca.requests
    ca.requests.clear()
    # An hour later the stored window decides: the CA's Retry-After (6 h) is not over.
    got = _run(config, now + datetime.timedelta(hours=1))[NAME]
    assert ca.requests == []  # Retry-After 6 h not over: no network at all
    assert got["action"] == "unchanged"
    start, end = (w.timestamp() for w in ca.window)
    assert start <= got["due_at"] <= end
