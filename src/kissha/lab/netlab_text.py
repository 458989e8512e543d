"""Pure text for the network lab: each node's kissha and molly-brown configs, dig parsed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from kissha.lab.certs import CertPair
from kissha.lab.site import LabNode

DNS_PORT = 53
HTTPS_PORT = 443
GEMINI_PORT = 1965


def parse_dig(returncode: int, output: str, rdtype: str) -> set[str]:
    """dig +noall +comments +answer output -> rdata texts, {"TIMEOUT"}, {"SERVFAIL"}, ..."""
    status = re.search(r"->>HEADER<<-.*status: ([A-Z]+)", output)
    if status is None:
        if "timed out" in output:
            return {"TIMEOUT"}
        if "connection refused" in output:
            return {"CONNREFUSED"}
        last = output.strip().splitlines()[-1:] or [f"dig exited {returncode}"]
        return {f"ERROR {last[0]}"}
    if status.group(1) != "NOERROR":
        return {status.group(1)}
    answers = set()
    for line in output.splitlines():
        fields = line.split()
        if line.startswith(";") or len(fields) < 5:
            continue
        if fields[3].upper() == rdtype.upper():
            answers.add(" ".join(fields[4:]))
    return answers


def config_text(
    node: LabNode,
    root: Path,
    nodes: Sequence[LabNode],
    ca: CertPair,
    control: Sequence[str],
    health: Mapping[str, object],
) -> str:
    """One node's kissha.toml: the loopback site's config, with this node's own paths."""
    settings = {"timeout": 1.0, **health}
    lines = [
        f"# written by kissha.lab.netlab for {node.name}",
        f'state_dir = "{root / "state"}"',
        f'default_master = "{nodes[0].name}"',
        'rotation = "weekly"',
        "",
    ]
    for n in nodes:
        lines += [
            f"[nodes.{n.name}]",
            f'fqdn = "{n.fqdn}"',
            f'ipv4 = "{n.ipv4}"',
            f'ipv6 = "{n.ipv6}"',
            "",
        ]
    lines += ["[health]"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in settings.items()]
    lines += [
        "",
        "[[health.probes]]",
        'type = "https"',
        f"port = {HTTPS_PORT}",
        f'ca_file = "{ca.cert}"',
        "",
        # molly-brown's certificates come from the lab's CA, so no TOFU state is needed
        "[[health.probes]]",
        'type = "gemini"',
        f"port = {GEMINI_PORT}",
        'tls = "ca"',
        f'ca_file = "{ca.cert}"',
        'expect = "Welcome to {fqdn}"',
        "",
        # a nameserver being down does not take the sites down: report it only
        "[[health.probes]]",
        'type = "dns"',
        'zone = "example.org"',
        "required = false",
        "",
        "[dns]",
        'server = "nsd"',
        f'zones_dir = "{root / "zones"}"',
        'zones = "*.zone"',
        "control = [" + ", ".join(f'"{a}"' for a in control) + "]",
        'verify_servers = ["127.0.0.1", "::1"]',
        f"verify_port = {DNS_PORT}",
        "verify_timeout = 3.0",
        "",
    ]
    return "\n".join(lines)


def molly_config(node: LabNode, root: Path, pair: CertPair) -> str:
    return "\n".join(
        [
            f"Port = {GEMINI_PORT}",
            f'Hostname = "{node.fqdn}"',
            f'CertPath = "{pair.cert}"',
            f'KeyPath = "{pair.key}"',
            f'DocBase = "{root / "gemini"}"',
            f'AccessLog = "{root / "molly-access.log"}"',
            f'ErrorLog = "{root / "molly-error.log"}"',
            "",
        ]
    )
