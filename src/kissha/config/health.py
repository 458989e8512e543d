"""The [health] table: how nodes are probed, each probe type's keys, pinned fingerprints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config.tomlcheck import (
    Reader,
    at_least,
    kind_of,
    one_of,
    path_from,
    port_number,
    positive,
    zone_name,
)
from kissha.core.model import Node, ProbeSpec

# Each probe type with its default port (None: the port must be given).
PROBE_KINDS: dict[str, int | None] = {
    "https": 443,
    "http": 80,
    "gemini": 1965,
    "tcp": None,
    "dns": 53,
    "smtp": 25,
}
COMMON_PROBE_KEYS = {"name", "type", "port", "required"}
# The keys only some types take, and the types that take them (for error messages).
PROBE_KEY_TYPES = {
    "path": "http, https and gemini",
    "expect": "http, https and gemini",
    "ca_file": "https and gemini",
    "tls": "gemini",
    "fingerprints": "gemini",
    "zone": "dns",
}
PROBE_KEYS = {
    "https": {"path", "expect", "ca_file"},
    "http": {"path", "expect"},
    "gemini": {"path", "expect", "ca_file", "tls", "fingerprints"},
    "tcp": set(),
    "dns": {"zone"},
    "smtp": set(),
}
GEMINI_TLS = ("tofu", "ca", "pinned")
_HEX64_RE = re.compile(r"^[0-9A-F]{64}$")


@dataclass(frozen=True)
class HealthConfig:
    """How nodes are probed and how results are debounced."""

    probes: tuple[ProbeSpec, ...]
    timeout: float = 2.0
    retries: int = 1
    failures_before_demotion: int = 3
    successes_before_promotion: int = 5
    max_body: int = 65536
    cert_warn_days: int = 14  # a passing https/gemini probe warns this close to expiry


def parse_health(
    r: Reader, table: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> HealthConfig:
    p = "health"
    r.unknown(
        table,
        {
            "timeout",
            "retries",
            "failures_before_demotion",
            "successes_before_promotion",
            "max_body",
            "cert_warn_days",
            "probes",
        },
        p,
    )
    timeout = r.get(table, "timeout", p, float, 2.0, positive)
    retries = r.get(table, "retries", p, int, 1, at_least(0))
    fails = r.get(table, "failures_before_demotion", p, int, 3, at_least(1))
    oks = r.get(table, "successes_before_promotion", p, int, 5, at_least(1))
    max_body = r.get(table, "max_body", p, int, 65536, at_least(64))
    cert_warn_days = r.get(table, "cert_warn_days", p, int, 14, at_least(0))
    raw = table.get("probes", [{"type": "https"}])
    probes: list[ProbeSpec] = []
    if not isinstance(raw, list) or not raw:
        r.problem(f"{p}.probes", "must be a non-empty array of tables ([[health.probes]])")
        raw = []
    names: set[str] = set()
    for i, spec in enumerate(raw):
        key = f"{p}.probes[{i}]"
        if not isinstance(spec, dict):
            r.problem(key, f"must be a table, not {kind_of(spec)}")
            continue
        probe = _probe(r, spec, key, base, nodes)
        if probe.name in names:
            r.problem(f"{key}.name", f"two probes are named {probe.name!r}")
        names.add(probe.name)
        probes.append(probe)
    if probes and not any(pr.required for pr in probes):
        r.problem(f"{p}.probes", "at least one probe must be required")
    return HealthConfig(
        probes=tuple(probes),
        timeout=timeout,
        retries=retries,
        failures_before_demotion=fails,
        successes_before_promotion=oks,
        max_body=max_body,
        cert_warn_days=cert_warn_days,
    )


def _probe(
    r: Reader, spec: Mapping[str, Any], key: str, base: Path, nodes: tuple[Node, ...]
) -> ProbeSpec:
    """One [[health.probes]] table: the keys its type takes, with that type's defaults."""
    kind = r.get(spec, "type", key, str, "https", one_of(tuple(PROBE_KINDS)))
    own = PROBE_KEYS[kind] | COMMON_PROBE_KEYS
    for k in spec:
        if k in PROBE_KEY_TYPES and k not in own:
            r.problem(f"{key}.{k}", f"only for {PROBE_KEY_TYPES[k]} probes")
    spec = {k: v for k, v in spec.items() if k not in PROBE_KEY_TYPES or k in own}
    r.unknown(spec, own, key)  # "did you mean" suggests only keys this type takes
    spec = {k: v for k, v in spec.items() if k in own}
    name = r.get(spec, "name", key, str, kind)
    default_port = PROBE_KINDS[kind]
    if default_port is None and "port" not in spec:
        r.problem(f"{key}.port", f"missing (a {kind} probe has no default port)")
    port = r.get(spec, "port", key, int, default_port or 0, port_number)
    path = expect = ""  # tcp, dns and smtp send no request and read no body
    if "path" in own:
        path = r.get(spec, "path", key, str, "/" if kind == "gemini" else "/index.txt")
        if not path.startswith("/"):
            r.problem(f"{key}.path", f"must start with '/': {path!r}")
        elif not path.isprintable() or " " in path or not path.isascii():
            # it goes into the request line as it is: no spaces, controls or non-ASCII
            r.problem(f"{key}.path", f"must be a URL path without spaces or controls: {path!r}")
        default = "" if kind == "gemini" else "Welcome to {fqdn}"  # "": no body check
        expect = r.get(spec, "expect", key, str, default)
        if not _expect_ok(expect):
            r.problem(f"{key}.expect", "only {fqdn} may appear in braces ('{{' for a brace)")
    tls = r.get(spec, "tls", key, str, "tofu" if kind == "gemini" else "ca", one_of(GEMINI_TLS))
    if kind == "gemini" and tls != "ca" and "ca_file" in spec:
        r.problem(f"{key}.ca_file", f'only with tls = "ca" (this probe has tls = {tls!r})')
    ca_file = r.get(spec, "ca_file", key, str, "") or None
    if ca_file is not None:
        ca_file = str(path_from(base, ca_file))
    fingerprints: dict[str, str] = {}
    if tls == "pinned":
        if "fingerprints" not in spec:
            r.problem(f"{key}.fingerprints", 'missing (a table: node name = "sha256:HEX")')
        else:
            fingerprints = _fingerprints(
                r, r.table(spec, "fingerprints", key), f"{key}.fingerprints", nodes, name
            )
    elif "fingerprints" in spec:
        r.problem(f"{key}.fingerprints", f'only with tls = "pinned" (this probe has tls = {tls!r})')
    zone = None
    if kind == "dns":
        if "zone" not in spec:
            r.problem(f"{key}.zone", "missing (the zone whose SOA is asked, e.g. 'example.org')")
        zone = r.get(spec, "zone", key, str, "", zone_name).rstrip(".").lower() or None
    return ProbeSpec(
        name=name,
        kind=kind,
        port=port,
        path=path,
        expect=expect,
        ca_file=ca_file,
        required=r.get(spec, "required", key, bool, True),
        tls=tls,
        fingerprints=tuple(fingerprints.items()),
        zone=zone,
    )


def _fingerprints(
    r: Reader, table: Mapping[str, Any], key: str, nodes: tuple[Node, ...], probe: str
) -> dict[str, str]:
    """node name -> "sha256:HEX" (upper case, no colons) for every node running ``probe``."""
    out: dict[str, str] = {}
    known = [n.name for n in nodes]
    for name, value in table.items():
        if name not in known:
            r.problem(f"{key}.{name}", f"no such node (nodes: {', '.join(known)})")
            continue
        fingerprint = normal_fingerprint(value) if isinstance(value, str) else None
        if fingerprint is None:
            r.problem(f"{key}.{name}", f"not 'sha256:' and 64 hex digits: {value!r}")
            continue
        out[name] = fingerprint
    for node in nodes:
        if node.runs(probe) and node.name not in table:
            r.problem(key, f"no fingerprint for node {node.name!r}")
    return out


def normal_fingerprint(text: str) -> str | None:
    """``sha256:ab:cd...`` in any case, with or without colons -> ``sha256:ABCD...``."""
    algorithm, sep, digits = text.strip().partition(":")
    digits = digits.replace(":", "").upper()
    if algorithm.lower() != "sha256" or not sep or not _HEX64_RE.match(digits):
        return None
    return f"sha256:{digits}"


def _expect_ok(text: str) -> bool:
    """Only the plain field {fqdn}: no attributes, indexes, conversions or formats."""
    import string

    try:
        parsed = [(f, c, s) for _, f, s, c in string.Formatter().parse(text) if f is not None]
    except ValueError:
        return False
    return all(f == "fqdn" and not c and not s for f, c, s in parsed)


def check_node_probes(r: Reader, nodes: tuple[Node, ...], health: HealthConfig) -> None:
    """Each node's probe list names real probes, at least one of them required."""
    names = [pr.name for pr in health.probes]
    for node in nodes:
        for i, name in enumerate(node.probes or ()):
            if name not in names:
                r.problem(
                    f"nodes.{node.name}.probes[{i}]",
                    f"no such probe: {name!r} (probes: {', '.join(names)})",
                )
        mine = [pr for pr in health.probes if node.runs(pr.name)]
        if node.probes and mine and not any(pr.required for pr in mine):
            r.problem(
                f"nodes.{node.name}.probes",
                "none of its probes is required (a node needs at least one required probe)",
            )
