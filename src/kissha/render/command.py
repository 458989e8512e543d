"""The ``render`` subcommand. Light to import: cli.py registers the parser on every start."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kissha.config import Config

EPILOG = """\
exit codes:
  0   rendered (with --out: written under DIR/NODE/<path on the node>)
  2   configuration, template or usage error; nothing was written
  8   a file or directory cannot be read or written
  70  unexpected internal error
"""


def add_parser(sub: Any) -> None:
    r = sub.add_parser(
        "render",
        help="render every file each node needs (nsd, web, Gemini, cron/systemd, kissha.toml)",
        description="Render each node's files from the config through Jinja2 templates "
        "([deploy] templates overrides them). Pure: reads the config and the zone source "
        "directory, writes only under --out (without it, prints the files).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    r.add_argument("--out", type=Path, metavar="DIR", help="write DIR/NODE/<path on the node>")
    r.add_argument(
        "--flavour", choices=("openbsd", "debian"), help="default: [deploy] flavour, openbsd"
    )


# kissha init (render/init.py)
INIT_EPILOG = """\
exit codes:
  0   written (the config loads and both nodes render)
  2   usage error, or a file that would be overwritten (use --force); nothing written
  8   a file or directory cannot be written
"""


def add_init_parser(sub: Any) -> None:
    """kissha init's parser: here, not in init.py, which imports the config's checks."""
    i = sub.add_parser(
        "init",
        help="write a commented kissha.toml and a zone source directory for new nodes",
        description="Write DIR/kissha.toml (complete and commented) and DIR/zones/SITE.zone "
        "with the failover marks, check that they load and render, and print the next "
        "commands. With --node and --site nothing is asked; otherwise the questions are "
        "asked on the terminal.",
        epilog=INIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("--dir", type=Path, default=Path("."), help="where to write (default: .)")
    i.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NAME=FQDN,ADDR[,ADDR]",
        help="a node: its name, FQDN and IPv4 and/or IPv6 address, in order of preference "
        "(repeatable, at least two)",
    )
    i.add_argument("--site", action="append", default=[], help="a site's domain (repeatable)")
    i.add_argument("--flavour", choices=("openbsd", "debian"), default=None)
    i.add_argument("--gemini", action="store_true", help="the sites also serve Gemini")
    i.add_argument("--contact", default=None, help="e-mail for the ACME CA")
    i.add_argument("--force", action="store_true", help="overwrite existing files")


def targets(args: argparse.Namespace, cfg: Config) -> tuple[list[str], str]:
    """The nodes ``--node`` names (default: every node) and the flavour (``--flavour``,
    else [deploy] flavour, else openbsd): render, deploy and publish read them alike."""
    from kissha.errors import UsageError

    unknown = [n for n in args.node if n not in cfg.node_names]
    if unknown:
        raise UsageError(f"--node: no such node: {', '.join(unknown)}")
    flavour = args.flavour or (cfg.deploy.flavour if cfg.deploy else "openbsd")
    return list(args.node or cfg.node_names), flavour


def run(args: argparse.Namespace, config_path: Path) -> tuple[str, int]:
    from kissha import config as configmod
    from kissha.render.engine import render_node, write_tree

    cfg = configmod.load(config_path)
    text = config_path.read_text(encoding="utf-8")
    nodes, flavour = targets(args, cfg)
    overrides = cfg.deploy.templates if cfg.deploy else None
    files = []
    for name in nodes:
        files += render_node(cfg, name, flavour, text, overrides)
    if args.out is None:
        return "".join(f"==> {f.node}:{f.path} <==\n{f.content}\n" for f in files), 0
    written = write_tree(files, args.out)
    return "".join(f"{p}\n" for p in written), 0
