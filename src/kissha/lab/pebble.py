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
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kissha.lab.certs import issue, make_ca

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
