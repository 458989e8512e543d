"""pebble, Let's Encrypt's test CA, for tests and benchmarks: its own TLS certificate
made with openssl, a config, a process, and its issuing root fetched once it runs.

``argv_prefix`` runs it inside a namespace (the lab's client); ``dns`` is the resolver
its validation authority uses (the nodes' nsd, or pebble-challtestsrv on loopback).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.certs import issue, make_ca

START_TIMEOUT = 10.0


@dataclass
class Pebble:
    root: Path
    listen: str = "127.0.0.1"  # pebble's ACME listener (and management) address
    port: int = 14000
    http_port: int = 80  # where its VA connects for HTTP-01
    dns: str = "127.0.0.1:8053"
    argv_prefix: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"[{self.listen}]" if ":" in self.listen else self.listen

    @property
    def directory(self) -> str:
        return f"https://{self.host}:{self.port}/dir"

    @property
    def tls_ca(self) -> Path:
        """Trust for pebble's own HTTPS listener (kissha's [certs] ca_file)."""
        return self.root / "pki" / "ca.crt"

    @property
    def issuing_root(self) -> Path:
        """pebble's issuing root (changes at every start): verifies what it issued."""
        return self.root / "issuing-root.pem"

    def start(self) -> Pebble:
        self.root.mkdir(parents=True, exist_ok=True)
        ca = make_ca(self.root / "pki", "pebble listener CA")
        if ca.cert != self.tls_ca:
            self.tls_ca.write_bytes(ca.cert.read_bytes())
        leaf = issue(ca, self.root / "pki", "pebble", ["localhost"], [self.listen])
        config = {
            "pebble": {
                "listenAddress": f"{self.host}:{self.port}",
                "managementListenAddress": f"{self.host}:{self.port + 1000}",
                "certificate": str(leaf.cert),
                "privateKey": str(leaf.key),
                "httpPort": self.http_port,
                "tlsPort": 5001,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (self.root / "pebble.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
            **self.env,
        }
        log = (self.root / "pebble.log").open("ab")
        self.process = subprocess.Popen(
            [
                *self.argv_prefix,
                "pebble",
                "-config",
                str(self.root / "pebble.json"),
                "-dnsserver",
                self.dns,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.fetch_root()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start:\n{self.log()[-2000:]}") from None
                time.sleep(0.1)

    def fetch_root(self) -> None:
        """Download the issuing root; only from our own namespace (loopback pebble)."""
        if self.argv_prefix:
            done = subprocess.run(
                [
                    *self.argv_prefix,
                    "curl",
                    "-sSf",
                    "--max-time",
                    "5",
                    "--cacert",
                    str(self.tls_ca),
                    "-o",
                    str(self.issuing_root),
                    f"https://{self.host}:{self.port + 1000}/roots/0",
                ],
                capture_output=True,
                timeout=10,
            )
            if done.returncode != 0:
                raise OSError(done.stderr.decode(errors="replace"))
            return
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        url = f"https://{self.host}:{self.port + 1000}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            self.issuing_root.write_bytes(response.read())

    def log(self) -> str:
        try:
            return (self.root / "pebble.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@dataclass
class ChallTestSrv:
    """pebble-challtestsrv as a fake DNS: every name -> ``ipv4``, hosts added by name."""

    ipv4: str = "127.0.0.1"
    dns_port: int = 8053
    management_port: int = 8055
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChallTestSrv:
        self.process = subprocess.Popen(
            [
                "pebble-challtestsrv",
                "-defaultIPv4",
                self.ipv4,
                "-defaultIPv6",
                "",
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"127.0.0.1:{self.management_port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.add_a("ready.test", self.ipv4)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pebble-challtestsrv did not start") from None
                time.sleep(0.05)

    def add_a(self, host: str, address: str) -> None:
        body = json.dumps({"host": host.rstrip(".") + ".", "addresses": [address]}).encode()
        url = f"http://127.0.0.1:{self.management_port}/add-a"
        with urllib.request.urlopen(url, data=body, timeout=5):
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        self.process = None


# -- on the two-node lab -------------------------------------------------------------


@dataclass
class LabCerts:
    """pebble on the lab's client, resolving through a node's nsd, and on every node
    ``kissha challenges`` on port 80 plus a [certs] table in its config."""

    lab: Any
    pebble: Pebble
    responders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ssl_dir(self, node: str) -> Path:
        return Path(self.lab.node_root(node)) / "ssl"

    def hooks(self, node: str) -> int:
        path = Path(self.lab.node_root(node)) / "hooks"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def certs(self, node: str, *args: str, now: str) -> subprocess.CompletedProcess[str]:
        return self.lab.kissha(node, "certs", *args, now=now, timeout=180)  # type: ignore[no-any-return]

    def set_strategy(self, node: str, strategy: str) -> None:
        path = Path(self.lab.config_path(node))
        text = path.read_text()
        old = next(s for s in ('"every-node"', '"when-served"') if f"strategy = {s}" in text)
        path.write_text(text.replace(f"strategy = {old}", f'strategy = "{strategy}"'))

    def serve_own_certs(self, node: str) -> None:
        """Restart the node's web and Gemini servers with the certificate pebble issued
        for its FQDN, and make its probes trust pebble's root instead of the lab CA."""
        lab = self.lab
        fqdn = lab.node(node).fqdn
        root = Path(lab.node_root(node))
        for service in ("web", "gemini"):
            lab.stop(node, service)
            pki = root / "pki"
            (pki / f"{service}.crt").write_bytes((self.ssl_dir(node) / f"{fqdn}.crt").read_bytes())
            (pki / f"{service}.key").write_bytes(
                (self.ssl_dir(node) / "private" / f"{fqdn}.key").read_bytes()
            )
            lab.start(node, service)
        for name in [n.name for n in lab.nodes]:
            path = Path(lab.config_path(name))
            path.write_text(
                path.read_text().replace(str(lab.ca.cert), str(self.pebble.issuing_root))
            )

    def stop(self) -> None:
        for p in self.responders:
            if p.poll() is None:
                p.terminate()
                p.wait(5)
        self.pebble.stop()


def lab_certs(lab: Any, sites: str = "example.org", strategy: str = "every-node") -> LabCerts:
    """Start pebble (on the client, its VA asking the first node's nsd) and a challenge
    responder on every node, and add [[sites]] and [certs] to every node's config."""
    client = lab.address("client", "ipv4")
    first = lab.nodes[0]
    pebble = Pebble(
        Path(lab.root) / "pebble",
        listen=client,
        http_port=80,
        dns=f"{first.ipv4}:53",
        argv_prefix=lab._in("client"),
    ).start()
    out = LabCerts(lab, pebble)
    for node in lab.nodes:
        root = Path(lab.node_root(node.name))
        path = Path(lab.config_path(node.name))
        path.write_text(
            path.read_text()
            + f"""
[[sites]]
name = "{sites}"

[certs]
node = "{node.name}"
strategy = "{strategy}"
directory = "{pebble.directory}"
ca_file = "{pebble.tls_ca}"
contact = "ops@example.org"
cert = "{root}/ssl/{{name}}.crt"
key = "{root}/ssl/private/{{name}}.key"
fullchain = "{root}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{root}/acme"
reload = [["sh", "-c", "echo reload >> {root}/hooks"]]
"""
        )
        log = (root / "challenges.log").open("ab")
        out.responders.append(
            subprocess.Popen(
                [
                    *lab._in(node.name),
                    sys.executable,
                    "-m",
                    "kissha",
                    "-c",
                    str(path),
                    "challenges",
                    "--listen",
                    f"{node.ipv4}:80",
                    "--listen",
                    f"[{node.ipv6}]:80",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=lab._env(),
                start_new_session=True,
            )
        )
        log.close()
    for node in lab.nodes:
        done = lab.exec(
            "client",
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--retry",
                "20",
                "--retry-connrefused",
                "--retry-delay",
                "0",
                "--max-time",
                "10",
                f"http://{node.ipv4}/",
            ],
        )
        if done.returncode != 0:
            raise RuntimeError(f"challenge responder on {node.name} did not start")
    return out
