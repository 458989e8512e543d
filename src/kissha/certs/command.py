"""The ``certs`` and ``challenges`` subcommands: arguments, and the run's text and JSON.

Light to import: cli.py registers the parsers on every start; the rest loads on use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kissha.certs.report import Report

EPILOG = """\
exit codes:
  0   nothing changed (no certificate was due, or --dry-run)
  1   certificates or placeholders written; the reload hooks ran and succeeded
  2   configuration or usage error
  3   a name could not be obtained (the others were done) or a reload hook failed
  4   another kissha certs run holds the lock
  6   split brain seen: site names were not requested (node FQDNs were)
  70  unexpected internal error
"""


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "certs",
        help="obtain and renew the TLS certificates of every name (daily, from cron)",
        description="Write a self-signed placeholder for every name that has no "
        "certificate, ask the ACME CA ([certs] directory) for every name that is due, "
        "write key, certificate and chain atomically, and run the reload hooks once "
        "if anything changed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--dry-run", action="store_true", help="say what is due; write nothing")
    c.add_argument("--json", action="store_true", help="print the run as JSON")
    c.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="NAME",
        help="renew NAME now, due or not (repeatable)",
    )
    c.add_argument("--now", metavar="ISO8601", help="pretend it is this time (drills, tests)")
    ch = sub.add_parser(
        "challenges",
        help="answer ACME HTTP-01 challenges on port 80, redirecting others to the peers",
        description="Serve [certs] challenge_dir at /.well-known/acme-challenge/ and "
        "redirect tokens not held here along the node FQDNs, so a CA reaches the node "
        "that asked whichever node the name points at; every other path is redirected "
        "to HTTPS. Runs until stopped.",
    )
    ch.add_argument(
        "--listen",
        action="append",
        required=True,
        metavar="ADDR:PORT",
        help="where to listen, e.g. 0.0.0.0:80 or [::]:80 (repeatable)",
    )


def certs(args: argparse.Namespace, config_path: Path, now: float) -> tuple[str, int]:
    from kissha import config as configmod
    from kissha.certs import run

    cfg = configmod.load(config_path)
    report = run.run(cfg, now, dry_run=args.dry_run, force=tuple(args.force))
    if args.json:
        data = {"schema": "kissha.certs/1", **report.to_json(), "exit_code": report.exit_code()}
        return json.dumps(data, indent=2) + "\n", report.exit_code()
    return text(report), report.exit_code()


def text(report: Report) -> str:
    from kissha.core.model import iso

    head = f"certs on {report.node} ({report.strategy})"
    lines = [head + (" [dry run]" if report.dry_run else "")]
    if report.split_brain:
        lines.append(
            f"split brain: {report.split_brain}; site names are not requested "
            "(the CA could reach either node)"
        )
    for r in report.names:
        expiry = f"  expires {iso(r.not_after)}" if r.not_after else ""
        lines.append(f"  {r.action:<17} {r.name:<32} {r.reason}{expiry}")
        if r.error and r.action != "failed":
            lines.append(f"  {'':<17} last error: {r.error}")
        elif r.error:
            lines.append(f"  {'':<17} {r.error}")
    for hook in report.hooks:
        lines.append(f"  ran: {hook}")
    for problem in report.hook_errors:
        lines.append(f"  hook failed: {problem}")
    if not report.hooks and not report.dry_run:
        lines.append("  no certificate changed: no reload")
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def challenges(config_path: Path, listen: list[str]) -> int:
    from kissha import config as configmod
    from kissha.certs import responder
    from kissha.certs.run import this_node
    from kissha.config.tomlcheck import parse_listen
    from kissha.errors import ConfigError, UsageError

    cfg = configmod.load(config_path)
    if cfg.certs is None:
        raise ConfigError(["certs: no [certs] table (challenge_dir)"], cfg.source)
    me = cfg.node(this_node(cfg, cfg.certs)).fqdn
    addresses = []
    for item in listen:
        address = parse_listen(item)
        if address is None:
            raise UsageError(f"--listen: not ADDR:PORT: {item!r}")
        addresses.append(address)
    chain = tuple(n.fqdn for n in cfg.nodes)
    return responder.serve(addresses, cfg.certs.challenge_dir, me, chain)
