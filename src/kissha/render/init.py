"""``kissha init``: a complete, commented kissha.toml and a zone source directory that
renders, from a few answers (flags, or questions on a terminal)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kissha.config.tomlcheck import fully_qualified
from kissha.errors import UsageError

PATHS = {
    "openbsd": {
        "state_dir": "/var/db/kissha",
        "zones_dir": "/var/nsd/zones/master",
        "layout": "openbsd",
        "challenge_dir": "/var/www/acme",
        "reload": '[["rcctl", "reload", "relayd"]]',
        "key_group": "",
    },
    "debian": {
        "state_dir": "/var/lib/kissha",
        "zones_dir": "/etc/nsd/zones",
        "layout": "debian",
        "challenge_dir": "/var/lib/kissha/acme",
        "reload": '[["systemctl", "reload", "nginx"], ["systemctl", "restart", '
        '"molly-brown@kissha"]]',
        "key_group": "ssl-cert",
    },
}


@dataclass(frozen=True)
class NodeAnswer:
    name: str
    fqdn: str
    ipv4: str | None
    ipv6: str | None


@dataclass(frozen=True)
class Answers:
    nodes: tuple[NodeAnswer, ...]
    sites: tuple[str, ...]
    flavour: str
    gemini: bool
    contact: str


def parse_node(text: str) -> NodeAnswer:
    name, sep, rest = text.partition("=")
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    if not sep or not name or len(parts) < 2:
        raise UsageError(f"--node: expected NAME=FQDN,ADDR[,ADDR], not {text!r}")
    fqdn = parts[0].rstrip(".").lower()
    if fully_qualified(fqdn) is not None:
        raise UsageError(f"--node {name}: not a fully qualified name: {fqdn!r}")
    ipv4 = ipv6 = None
    for part in parts[1:]:
        try:
            address = ipaddress.ip_address(part)
        except ValueError:
            raise UsageError(f"--node {name}: not an IP address: {part!r}") from None
        if address.version == 4:
            ipv4 = str(address)
        else:
            ipv6 = address.compressed
    return NodeAnswer(name, fqdn, ipv4, ipv6)


def _ask(prompt: Callable[[str], str], question: str, default: str = "") -> str:
    answer = prompt(f"{question}{f' [{default}]' if default else ''}: ").strip()
    return answer or default


def gather(args: argparse.Namespace, prompt: Callable[[str], str] | None = None) -> Answers:
    """The answers from the flags; what is missing is asked (only on a terminal)."""
    nodes = [parse_node(n) for n in args.node]
    sites = [s.rstrip(".").lower() for s in args.site]
    if (len(nodes) < 2 or not sites) and prompt is None:
        if not sys.stdin.isatty():
            raise UsageError(
                "init: give at least two --node and one --site (stdin is not a terminal)"
            )
        prompt = input
    if prompt is not None:
        while len(nodes) < 2 or _ask(prompt, "another node? (y/n)", "n") == "y":
            text = _ask(prompt, f"node {len(nodes) + 1} as NAME=FQDN,IPV4,IPV6")
            nodes.append(parse_node(text))
        while not sites:
            sites = [s for s in _ask(prompt, "sites (domains, space-separated)").split() if s]
    for site in sites:
        if fully_qualified(site) is not None:
            raise UsageError(f"--site: not a fully qualified name: {site!r}")
    if len({n.name for n in nodes}) != len(nodes):
        raise UsageError("--node: a node name is given twice")
    return Answers(
        tuple(nodes), tuple(sites), args.flavour or "openbsd", args.gemini, args.contact or ""
    )


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(a: Answers) -> str:
    p = PATHS[a.flavour]
    out = [
        "# kissha.toml: one config for every node, written by kissha init.",
        "# kissha render shows the files each node gets; kissha deploy installs them.",
        "# Every key: docs/configuration.md. Check with: kissha -c kissha.toml check-config",
        "",
        "# Where each node keeps kissha's state, lock and journal.",
        f"state_dir = {_q(p['state_dir'])}",
        "",
        '# The node that leads in even weeks (and always, with rotation = "off").',
        f"default_master = {_q(a.nodes[0].name)}",
        '# "weekly": roles swap every Monday 00:00 UTC; "off": never.',
        'rotation = "weekly"',
        "",
        "# The nodes, in order of preference. Addresses are literals: kissha never looks",
        "# them up in the DNS it rewrites.",
    ]
    for n in a.nodes:
        out += ["", f"[nodes.{n.name}]", f"fqdn = {_q(n.fqdn)}"]
        out += [f"ipv4 = {_q(n.ipv4)}"] if n.ipv4 else []
        out += [f"ipv6 = {_q(n.ipv6)}"] if n.ipv6 else []
    serve = '["https", "gemini"]' if a.gemini else '["https"]'
    out += [
        "",
        "# The sites every node serves. Each gets the alias www.SITE (points at the master)",
        "# and standby.SITE (points at the standby); see docs/configuration.md#sites.",
    ]
    for site in a.sites:
        out += ["", "[[sites]]", f"name = {_q(site)}", f"serve = {serve}"]
    contact = f"contact = {_q(a.contact)}" if a.contact else '# contact = "ops@example.org"'
    out += [
        "",
        "# Certificates: kissha certs (daily) keeps one certificate per name on every node;",
        "# port 80 answers the CA's challenges along the node FQDNs (README: Certificates).",
        "[certs]",
        contact,
        '# "letsencrypt", "letsencrypt-staging" (try this first) or any ACME URL.',
        'directory = "letsencrypt"',
        f"layout = {_q(p['layout'])}",
        f"challenge_dir = {_q(p['challenge_dir'])}",
    ]
    out += [f"key_group = {_q(p['key_group'])}"] if p["key_group"] else []
    out += [
        f"reload = {p['reload']}",
        "",
        "[health]",
        '# A node is healthy when https://FQDN/index.txt says "Welcome to FQDN" over every',
        "# address family; demoted after 3 failed rounds, trusted again after 5 good ones.",
        "timeout = 2.0",
        "retries = 1",
        "failures_before_demotion = 3",
        "successes_before_promotion = 5",
        "",
        "[[health.probes]]",
        'type = "https"',
        'path = "/index.txt"',
        'expect = "Welcome to {fqdn}"',
        "",
        "[dns]",
        'server = "nsd"',
        "# Where the zone files live on each node; kissha rewrites the marked records there.",
        f"zones_dir = {_q(p['zones_dir'])}",
        'zones = "*.zone"',
        "",
        "# Only kissha render and kissha deploy read this table.",
        "[deploy]",
        f"flavour = {_q(a.flavour)}",
        "# Your zone files, with their '; Enable failover' marks (relative to this file).",
        'zones_source = "zones"',
        "# Your own templates, DIR/FLAVOUR/NAME.j2 or DIR/NAME.j2, win over kissha's.",
        '# templates = "templates"',
        '# How deploy reaches the nodes (default: ssh root@FQDN); become = "doas" or "sudo".',
        '# ssh_user = "root"',
        '# become = ""',
        "",
    ]
    return "\n".join(out)


def zone_text(site: str, a: Answers) -> str:
    master, standby = a.nodes[0], a.nodes[1]
    lines = [
        f"$ORIGIN {site}.",
        "$TTL 4h",
        f"@        IN  SOA  {a.nodes[0].fqdn}. hostmaster.{site}. (",
        "                  1   ; serial",
        "                  1h 30m 7d 1h )",
    ]
    lines += [f"         IN NS   {n.fqdn}." for n in a.nodes]
    # Node FQDNs inside this zone always point at their node (no mark).
    for n in a.nodes:
        if n.fqdn.endswith("." + site):
            label = n.fqdn[: -len(site) - 1]
            lines += [f"{label}  IN A     {n.ipv4}"] if n.ipv4 else []
            lines += [f"{label}  IN AAAA  {n.ipv6}"] if n.ipv6 else []
    lines.append("; kissha points these at the master (standby.*: the standby).")
    for owner, node in (("@", master), ("www", master), ("standby", standby)):
        if node.ipv4:
            lines.append(f"{owner:8} 300 IN A     {node.ipv4} ; Enable failover")
        if node.ipv6:
            lines.append(f"{owner:8} 300 IN AAAA  {node.ipv6} ; Enable failover")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, prompt: Callable[[str], str] | None = None) -> str:
    from kissha import config as configmod
    from kissha.render.engine import render_node

    a = gather(args, prompt)
    directory: Path = args.dir
    files = {directory / "kissha.toml": config_text(a)}
    files.update({directory / "zones" / f"{s}.zone": zone_text(s, a) for s in a.sites})
    existing = [str(p) for p in files if p.exists()]
    if existing and not args.force:
        raise UsageError(f"init: would overwrite {', '.join(existing)} (use --force)")
    # Check before writing: what init writes must load and render.
    configmod.parse(__import__("tomllib").loads(files[directory / "kissha.toml"]))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    cfg = configmod.load(directory / "kissha.toml")
    for name in cfg.node_names:
        render_node(cfg, name, a.flavour, files[directory / "kissha.toml"])
    c = directory / "kissha.toml"
    return (
        "".join(f"wrote {p}\n" for p in files)
        + "\nnext:\n"
        + f"  $EDITOR {c}                         # contact, sites, probes\n"
        + f"  kissha -c {c} render --out rendered   # look at every node's files\n"
        + f"  kissha -c {c} deploy --dry-run        # what would change on the nodes\n"
        + f"  kissha -c {c} deploy\n"
    )
