"""The ``deploy`` subcommand. Light to import: cli.py registers the parser on every start;
pyinfra and Jinja2 load only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """\
exit codes (the first that applies, in this order: 2, 5, 3, 1, 0):
  0   nothing to change on any node
  1   files changed and services reloaded (--dry-run: files would change; see the diff)
  2   configuration, template or usage error: no node was contacted
  3   a node's server refused its new files (its own syntax check): that node's files
      were put back and nothing was reloaded there; the other nodes were deployed
  5   a node could not be reached, or a command or reload failed on it (named); the
      other nodes were deployed
  70  unexpected internal error
"""


def add_parser(sub: Any) -> None:
    d = sub.add_parser(
        "deploy",
        help="install every node's rendered files over SSH, reloading only what changed",
        description="Render every node's files (as 'kissha render'), compare them with "
        "what each node has, and install what differs with its owner and mode: the "
        "server's own syntax check runs before anything is installed or reloaded, and "
        "only the services whose files changed are reloaded. Over SSH with pyinfra; "
        "[deploy] says how to reach the nodes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--dry-run", action="store_true", help="print the diff; change nothing")
    d.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    d.add_argument("--flavour", choices=("openbsd", "debian"), help="default: [deploy] flavour")


def run(args: argparse.Namespace, config_path: Path) -> tuple[str, int]:
    from kissha import config as configmod
    from kissha.deploy import run as deploy_run
    from kissha.render.command import targets

    cfg = configmod.load(config_path)
    nodes, flavour = targets(args, cfg)
    text = config_path.read_text(encoding="utf-8")
    results = deploy_run.run(cfg, text, nodes, flavour, args.dry_run)
    out: list[str] = []
    for r in results:
        if args.dry_run:
            out += [c.diff() for c in r.changes]
        verb = "would change" if args.dry_run else "changed"
        state = f"{len(r.changes)} file(s) {verb}" if r.changes else "no change"
        if r.code in (3, 5):
            state = f"FAILED: {r.error}"
        out.append(f"{r.node}: {state}\n")
        out += [f"  {c.path}\n" for c in r.changes if not args.dry_run and r.code != 3]
        if r.reloaded:
            out.append(f"  reloaded: {', '.join(r.reloaded)}\n")
        out += [f"  note: {n}\n" for n in r.notes]
    return "".join(out), deploy_run.exit_code(results)


PUBLISH_EPILOG = """\
exit codes (the first that applies, in this order: 2, 5, 1, 0):
  0   nothing to change on any node
  1   files copied or removed (--dry-run: would be; they are listed)
  2   configuration or usage error (no web_source/gemini_source, a directory that is
      not a site): no node was contacted
  5   a node could not be reached, or a copy failed on it (named); the other nodes
      were published
  70  unexpected internal error
"""


def add_publish_parser(sub: Any) -> None:
    d = sub.add_parser(
        "publish",
        help="copy the sites' static content to every node, only what changed",
        description="Copy each site's content, [deploy] web_source/SITE/ to web_root/SITE/ "
        "and gemini_source/SITE/ to gemini_root/SITE/, to every node over SSH (as "
        "'kissha deploy'): only the files whose SHA-256 differs from the node's, each "
        "written next to its target and renamed into place.",
        epilog=PUBLISH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--dry-run", action="store_true", help="list what would change; copy nothing")
    d.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    d.add_argument("--flavour", choices=("openbsd", "debian"), help="default: [deploy] flavour")
    d.add_argument(
        "--delete", action="store_true", help="also remove files the source no longer has"
    )


def run_publish(args: argparse.Namespace, config_path: Path) -> tuple[str, int]:
    from kissha import config as configmod
    from kissha.deploy import publish
    from kissha.render.command import targets

    cfg = configmod.load(config_path)
    nodes, flavour = targets(args, cfg)
    results = publish.run(cfg, nodes, flavour, args.dry_run, args.delete)
    out: list[str] = []
    verb = "would change" if args.dry_run else "changed"
    for r in results:
        n = len(r.changed) + len(r.removed)
        if r.code == 5:  # what was done before the failure follows it
            out.append(f"{r.node}: FAILED: {r.error}\n")
        else:
            out.append(f"{r.node}: {n} file(s) {verb}\n" if n else f"{r.node}: no change\n")
        out += [f"  {p}\n" for p in r.changed]
        out += [f"  {p} (removed)\n" for p in r.removed]
        if r.bytes:
            out.append(f"  {r.bytes} bytes copied\n")
    return "".join(out), publish.exit_code(results)
