"""``kissha monitor``: the command's work; cli.py parses, prints and exits."""

from __future__ import annotations

import argparse
from pathlib import Path

# Only the parser is built at every start of kissha (any command): what the monitor
# runs is imported by main(), for ``kissha monitor`` alone.


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "monitor",
        help="run the monitoring checks (Nagios plugins, probes, certificates...) and tell changes",
        description="Run the due checks (the original's set, generated from the config, plus "
        "[[monitor.checks]]), keep their state in state_dir/monitor.json, and tell what "
        "changed through the [notify] channels, once for all nodes. Exit 0 after a run, "
        "whatever the checks found (they are told, not exited); 2 config error, 4 another "
        "monitor run holds the lock; with --nagios 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    what = m.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the checks and run nothing")
    what.add_argument(
        "--nagios",
        action="store_true",
        help="one line from the last run's records (runs nothing): for an outside monitor",
    )
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.add_argument("--dry-run", action="store_true", help="run the checks, tell and save nothing")
    m.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing unless there are warnings"
    )
    m.add_argument("--now", metavar="ISO8601", help="pretend it is this time (drills, tests)")


def main(args: argparse.Namespace, config_path: Path, now: float) -> tuple[str, int]:
    """The output and the exit code of one ``kissha monitor``."""
    import json

    from kissha import config as configmod
    from kissha.monitor import render, run

    cfg = configmod.load(config_path)
    if args.list:
        specs, me = run.specs_for(cfg)
        if args.json:
            data = {
                "schema": "kissha.monitor-list/1",
                "node": me,
                "checks": [
                    {
                        "id": s.id,
                        "kind": s.kind,
                        "about": s.about,
                        "argv": list(s.argv),
                        "node": s.node,
                        "family": s.family,
                        "depends": list(s.depends),
                        "scope": s.scope,
                        "retries": s.retries,
                        "interval": s.interval,
                    }
                    for s in specs
                ],
            }
            return json.dumps(data, indent=2) + "\n", 0
        return render.listing(specs, me), 0
    if args.nagios:
        report = run.view(cfg, now)
        return render.nagios_line(report) + "\n", render.nagios_level(report)
    report = run.run(cfg, now, dry_run=args.dry_run)
    if args.json:
        return json.dumps(render.as_json(report), indent=2) + "\n", 0
    if args.quiet and not report.warnings:
        return "", 0
    return render.text(report), 0
