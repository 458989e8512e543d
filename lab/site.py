"""A whole kissha site on loopback: two HTTPS nodes, a real nsd, seed-style zones, a config.

Used by the integration tests and the loopback demo. It must run in a private network
namespace (``scripts/isolated``): it puts lab addresses (2001:db8:1::/64) on that
namespace's loopback, which must never happen on a real machine's network.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.certs import CertPair, issue, make_ca
from lab.nsd import NsdInstance


@dataclass(frozen=True)
class LabNode:
    name: str
    fqdn: str
    ipv4: str
    ipv6: str


NODES = (
    LabNode("fishfinger", "fishfinger.example.org", "127.0.0.11", "2001:db8:1::11"),
    LabNode("blowfish", "blowfish.example.org", "127.0.0.12", "2001:db8:1::12"),
)

# Seed-style zones, written the way the original's users write them (tabs, relative and
# absolute names, TTL 300 on marked records), plus a few layouts the original missed.
ZONE_TEMPLATE = """\
$ORIGIN {zone}.
$TTL 4h
@        IN  SOA  ns1.{zone}. hostmaster.{zone}. (
                  {serial}   ; serial
                  1h              ; refresh
                  30m             ; retry
                  7d              ; expire
                  1h )            ; negative
         IN NS   ns1.{zone}.
         IN NS   ns2.{zone}.
         IN MX 10 ns1.{zone}.
\t     300 IN A {a4} ; Enable failover
         300 IN AAAA {a6} ; Enable failover
ns1      IN A    {a4}
ns2      IN A    {b4}
www      300 IN A {a4} ; Enable failover
www      300 IN AAAA {a6} ; Enable failover
standby  300 IN A {b4} ; Enable failover
standby  300 IN AAAA {b6} ; Enable failover
standby.paul  300 IN AAAA {b6} ; Enable failover
www.f3s.{zone}.  300 IN A {a4} ; Enable failover
gemini IN 300 A {a4} ; Enable failover
mail     IN A    {a4}
; the nodes' own names (the original script looked them up in DNS; kissha does not)
fishfinger IN A {a4}
fishfinger IN AAAA {a6}
blowfish IN A {b4}
blowfish IN AAAA {b6}
"""
DEFAULT_ZONES = (
    "example.org",
    "foo.zone",
    "irregular.ninja",
    "paul.example.net",
    "snonux.foo",
    "buetow.test",
)


def kissha_toml(
    header: str,
    root: Path,
    nodes: Sequence[LabNode],
    health: Mapping[str, object],
    probes: Sequence[Mapping[str, object]],
    control: Sequence[str],
    dns_port: int,
    rotation: str = "weekly",
) -> str:
    """A kissha.toml for a lab node: state and zones under ``root``, nsd verified on the
    node's own loopback. Values are written as JSON, which is valid TOML for these."""
    import json

    def kv(table: Mapping[str, object]) -> list[str]:
        return [f"{k} = {json.dumps(v)}" for k, v in table.items()]

    lines = [f"# {header}"]
    lines += kv(
        {"state_dir": str(root / "state"), "default_master": nodes[0].name, "rotation": rotation}
    )
    for n in nodes:
        lines += ["", f"[nodes.{n.name}]", *kv({"fqdn": n.fqdn, "ipv4": n.ipv4, "ipv6": n.ipv6})]
    lines += ["", "[health]", *kv(health)]
    for probe in probes:
        lines += ["", "[[health.probes]]", *kv(probe)]
    lines += ["", "[dns]"]
    lines += kv(
        {
            "server": "nsd",
            "zones_dir": str(root / "zones"),
            "zones": "*.zone",
            "control": list(control),
            "verify_servers": ["127.0.0.1", "::1"],
            "verify_port": dns_port,
            "verify_timeout": 3.0,
        }
    )
    return "\n".join(lines) + "\n"


def isolated() -> bool:
    """True inside a network namespace whose only interface is loopback."""
    import socket

    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


@dataclass
class LoopbackSite:
    """Build with ``with LoopbackSite(tmpdir) as site:``; everything stops on exit."""

    root: Path
    zones: Sequence[str] = DEFAULT_ZONES
    dns_port: int = 5353
    https_port: int = 8443
    nodes: Sequence[LabNode] = NODES
    health: Mapping[str, object] = field(default_factory=dict)
    template: str = ZONE_TEMPLATE
    nsd: NsdInstance | None = None
    ca: CertPair | None = None
    _web: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- set-up --------------------------------------------------------------------------

    def __enter__(self) -> LoopbackSite:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not isolated():
            raise RuntimeError(
                "the loopback site needs a private network namespace: run it through "
                "scripts/isolated (it adds lab addresses to loopback)"
            )
        _ip("link", "set", "lo", "up")
        for node in self.nodes:
            with contextlib.suppress(subprocess.CalledProcessError):  # already there
                _ip("-6", "addr", "add", f"{node.ipv6}/128", "dev", "lo", "nodad")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "zones").mkdir(exist_ok=True)
        (self.root / "state").mkdir(exist_ok=True)
        self.ca = make_ca(self.root / "pki")
        for z in self.zones:
            self.zone_path(z).write_text(self.zone_text(z))
        self.nsd = NsdInstance(
            self.root / "zones",
            [("127.0.0.1", self.dns_port), ("::1", self.dns_port)],
            {f"{z}": f"{z}.zone" for z in self.zones},
        )
        self.nsd.start()
        for node in self.nodes:
            self.start_web(node.name)
        self.config_path.write_text(self.config_text())

    def stop(self) -> None:
        for name in list(self._web):
            self.stop_web(name)
        if self.nsd is not None:
            self.nsd.stop()

    def zone_path(self, zone: str) -> Path:
        return self.root / "zones" / f"{zone}.zone"

    def zone_text(self, zone: str, serial: int = 1700000000) -> str:
        a, b = self.nodes[0], self.nodes[1]
        return self.template.format(
            zone=zone, serial=serial, a4=a.ipv4, a6=a.ipv6, b4=b.ipv4, b6=b.ipv6
        )

    @property
    def config_path(self) -> Path:
        return self.root / "kissha.toml"

    def config_text(self, **health: object) -> str:
        assert self.ca is not None and self.nsd is not None
        return kissha_toml(
            "written by lab.site",
            self.root,
            self.nodes,
            {"timeout": 1.0, **self.health, **health},
            [{"type": "https", "port": self.https_port, "ca_file": str(self.ca.cert)}],
            self.nsd.control_argv,
            self.dns_port,
        )

    # -- web servers ---------------------------------------------------------------------

    def start_web(self, name: str, *extra: str) -> None:
        assert self.ca is not None
        node = next(n for n in self.nodes if n.name == name)
        pki = self.root / "pki"
        pair = issue(self.ca, pki, node.name, [node.fqdn], [node.ipv4, node.ipv6])
        ready = self.root / f"web-{name}.ready"
        ready.unlink(missing_ok=True)
        log = (self.root / f"web-{name}.log").open("ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab.webserver",
                "--listen",
                f"{node.ipv4}:{self.https_port}",
                "--listen",
                f"[{node.ipv6}]:{self.https_port}",
                "--tls-cert",
                str(pair.cert),
                "--tls-key",
                str(pair.key),
                "--fqdn",
                node.fqdn,
                "--ready-file",
                str(ready),
                *extra,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self._web[name] = proc
        deadline = time.monotonic() + 10
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop_web(name)
                raise RuntimeError(f"web server for {name} did not start; see {log.name}")
            time.sleep(0.02)

    def stop_web(self, name: str) -> None:
        proc = self._web.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def web_running(self, name: str) -> bool:
        return name in self._web

    # -- kissha and dig ------------------------------------------------------------------

    def kissha(
        self, *args: str, now: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "kissha", "-c", str(self.config_path), *args]
        if now is not None:
            argv += ["--now", now]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def answers(self, name: str, rdtype: str, server: str = "127.0.0.1") -> set[str]:
        """What nsd answers now for name/type (a set of addresses, or {'SERVFAIL'}...)."""
        import dns.message
        import dns.query
        import dns.rcode

        q = dns.message.make_query(name, rdtype)
        r = dns.query.udp(q, server, port=self.dns_port, timeout=2)
        if r.rcode() != dns.rcode.NOERROR:
            return {dns.rcode.to_text(r.rcode())}
        return {rd.to_text() for rrset in r.answer for rd in rrset}

    def serial(self, zone: str, server: str = "127.0.0.1") -> int:
        (soa,) = self.answers(zone, "SOA", server)
        return int(soa.split()[2])

    def wait_for(self, name: str, rdtype: str, want: set[str], seconds: float = 5) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.answers(name, rdtype) == want:
                return True
            time.sleep(0.02)
        return False
