"""Pure text for the network lab: each node's kissha and molly-brown configs, dig parsed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.certs import CertPair
from lab.site import LabNode, kissha_toml

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
    rotation: str = "weekly",
) -> str:
    """One node's kissha.toml: HTTPS and Gemini required, DNS reported only."""
    probes: list[dict[str, object]] = [
        {"type": "https", "port": HTTPS_PORT, "ca_file": str(ca.cert)},
        # molly-brown's certificates come from the lab's CA: no TOFU state needed
        {
            "type": "gemini",
            "port": GEMINI_PORT,
            "tls": "ca",
            "ca_file": str(ca.cert),
            "expect": "Welcome to {fqdn}",
        },
        # a nameserver being down does not take the sites down: report it only
        {"type": "dns", "zone": "example.org", "required": False},
    ]
    return kissha_toml(
        f"written by lab.netlab for {node.name}",
        root,
        nodes,
        {"timeout": 1.0, **health},
        probes,
        control,
        DNS_PORT,
        rotation,
    )


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
