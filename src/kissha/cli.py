"""Command line: argument parsing, output and exit codes; the only module that prints."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha import __version__, exits
from kissha.errors import KisshaError, UsageError
from kissha.exits import Exit

DESCRIPTION = """\
kissha keeps small self-hosted sites up with two or more servers and no load balancer:
each node runs its own authoritative nameserver, and kissha points the A/AAAA records
marked '; Enable failover' in its local zone files at whichever node is healthy.
"""

EPILOG = (
    exits.help_text()
    + """
examples:
  kissha check-config                     validate /etc/kissha.toml and the zones
  kissha failover --dry-run               show what a run would do, write nothing
  * * * * * kissha failover               crontab: one run a minute (mail on change)
  kissha pin blowfish --for 2h            keep blowfish master during maintenance
"""
)


if TYPE_CHECKING:  # argparse's own type for what add_subparsers returns
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """kissha's parser; with ``command``, one that holds only that command's parser (and
    what is added with it): it parses that command's arguments the same, in a seventh of
    the time to build (~0.6 of ~4.5 ms, and no imports), which cron pays every minute."""
    p = argparse.ArgumentParser(
        prog="kissha",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"kissha {__version__}")
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("KISSHA_CONFIG", "/etc/kissha.toml")),
        help="config file (default: $KISSHA_CONFIG or /etc/kissha.toml)",
    )
    p.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    if command is not None:
        ADDERS[ADDED_WITH.get(command, command)](sub)
        return p
    for add in ADDERS.values():
        add(sub)
    return p


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, when that is certain before argparse reads it: kissha's
    own options (``--debug``, ``-c FILE`` in its spellings) then a command's name. None
    for anything else (help, the version, an abbreviated option, an unknown command):
    the whole parser reads those, so that what it prints lists every command."""
    words = iter(argv)
    for word in words:
        if word in ("-c", "--config"):
            next(words, None)
        elif word != "--debug" and not word.startswith(("--config=", "-c")):
            return word if word in ADDERS or word in ADDED_WITH else None
    return None


def _add_failover(sub: Subparsers) -> None:
    """kissha failover: one run, for cron."""
    f = sub.add_parser(
        "failover",
        help="probe the nodes and point the marked records at the right ones",
        description="Probe every node, decide master and standby, rewrite the marked "
        "records of every managed zone, reload the nameserver, verify its answers, and "
        "roll back on any doubt.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument(
        "--dry-run",
        action="store_true",
        help="probe and plan, print the diff, write nothing (exit 1 if it would change records)",
    )
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing when nothing changed and nothing was recovered (exit 0): "
        "for plain cron mail",
    )
    f.add_argument(
        "--now",
        metavar="ISO8601",
        help="pretend it is this time (drills, tests), e.g. 2026-01-05T00:00:00Z",
    )


def _add_daemon(sub: Subparsers) -> None:
    """kissha daemon: failover rounds in a loop."""
    dm = sub.add_parser(
        "daemon",
        help="run failover rounds in a loop (seconds instead of cron's minutes)",
        description="Run the failover engine every INTERVAL seconds in one process, "
        "sharing the lock and the state with cron runs. Logs one line per round that "
        "changed something or failed. SIGTERM/SIGINT: finish the round and exit 0; "
        "SIGHUP: reload the config (a bad one is reported and the old one kept).",
    )
    dm.add_argument(
        "--interval",
        type=_interval,
        metavar="SECONDS",
        help="seconds between round starts, e.g. 0.5 or 10 (default: [daemon] interval, 60)",
    )
    dm.add_argument(
        "-v", "--verbose", action="store_true", help="log a line for every round, quiet or not"
    )


def _add_check_config(sub: Subparsers) -> None:
    """kissha check-config."""
    c = sub.add_parser(
        "check-config",
        help="validate the config and scan the zones",
        description="Validate the configuration; check that the zones and state "
        "directories take new files and that the nameserver's tools exist; read every "
        "managed zone as kissha plans it (every problem with file:line, and warnings for "
        "comments that almost match the mark) and as nsd loads it (dns.checkzone). "
        "Touches nothing. Exit 0 ok (warnings allowed), 2 the config or the environment "
        "(directories, tools) cannot work, 5 a zone file has problems. At most 50 problems "
        "are listed, then their count.",
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")


def _add_pin(sub: Subparsers) -> None:
    """kissha pin and kissha unpin."""
    pin = sub.add_parser(
        "pin",
        help="make a node master regardless of rotation",
        description="Override weekly rotation: NODE leads while it is "
        "healthy (health still wins). The pin is local to this node's state; "
        "pin every node the same way.",
    )
    pin.add_argument("node")
    pin.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long, e.g. 90m, 2h, 1d12h, 1w (default: until unpin)",
    )
    sub.add_parser("unpin", help="remove a pin", description="Remove a pin set by 'kissha pin'.")


def _add_status(sub: Subparsers) -> None:
    """kissha status: what every nameserver answers."""
    st = sub.add_parser(
        "status",
        help="what every nameserver answers: split brain, stale state (also for Nagios)",
        description="Ask every node's nameserver, over each address family, for the marked "
        "names; report which node each points at, the serials, the probes from here and the "
        "last events, and detect split brain and stale state. Exit 0 OK, 1 warnings, "
        "6 critical (split brain, no nameserver reachable, every node down), 2 config error; "
        "with --nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    out = st.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument(
        "--nagios",
        action="store_true",
        help="one line with perfdata; exit 0/1/2/3 as a monitoring plugin",
    )
    st.add_argument(
        "--stale-after",
        metavar="DURATION",
        default="10m",
        help="warn when the last failover run is older (default 10m)",
    )
    st.add_argument("--port", type=int, default=53, help="the nameservers' port (default 53)")
    st.add_argument(
        "--notify",
        action="store_true",
        help="tell split brain (and its end) through the [notify] channels: for a "
        "monitoring host that reaches every nameserver",
    )
    st.add_argument("--now", metavar="ISO8601", help="pretend it is this time (drills, tests)")


def _add_page(sub: Subparsers) -> None:
    """kissha page: the status page once."""
    pg = sub.add_parser(
        "page",
        help="write the status page once (index.html and status.json)",
        description="Write the status page now, from the last run recorded in the state, "
        "the history and (unless [page] nameservers = false) what every nameserver "
        "answers. Runs write it anyway when [page] is configured; this is for a first "
        "look, other directories and tests. Changes nothing else.",
    )
    pg.add_argument("--out", type=Path, metavar="DIR", help="write here instead of [page] dir")
    pg.add_argument("--port", type=int, help="the nameservers' port (default: [page] port, 53)")
    pg.add_argument("--now", metavar="ISO8601", help="pretend it is this time (drills, tests)")


def _elsewhere(module: str, adder: str) -> Callable[[Subparsers], None]:
    """A command whose parser lives in its own module, imported only when the parser
    is built: argparse only, the command's work is imported when it runs."""

    def add(sub: Subparsers) -> None:
        import importlib

        getattr(importlib.import_module(module), adder)(sub)

    return add


# Each command's parser, in the order of `kissha --help`.
ADDERS: dict[str, Callable[[Subparsers], None]] = {
    "failover": _add_failover,
    "daemon": _add_daemon,
    "check-config": _add_check_config,
    "pin": _add_pin,
    "status": _add_status,
    "page": _add_page,
    "certs": _elsewhere("kissha.certs.command", "add_parsers"),
    "monitor": _elsewhere("kissha.monitor.command", "add_parser"),
    "render": _elsewhere("kissha.render.command", "add_parser"),
    "init": _elsewhere("kissha.render.command", "add_init_parser"),
    "deploy": _elsewhere("kissha.deploy.command", "add_parser"),
    "publish": _elsewhere("kissha.deploy.command", "add_publish_parser"),
}
# Commands whose parser another's adds.
ADDED_WITH = {"unpin": "pin", "challenges": "certs"}


def parse_duration(text: str) -> float:
    """'90m', '2h', '1d12h', '1w', or plain seconds, to seconds."""
    from kissha.config.tomlcheck import seconds_of

    seconds = seconds_of(text)
    if seconds is None:
        raise UsageError(f"--for: not a duration: {text!r} (try 90m, 2h, 1d12h, 1w)")
    return seconds


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"not a number of seconds > 0: {text!r}")
    return value


def parse_now(text: str | None) -> float:
    if text is None:
        return time.time()
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now: not an ISO 8601 time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(_command_of(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="kissha: %(levelname)s: %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return Exit.CONFIG
    # --debug adds the traceback; the exit code stays the documented one.
    try:
        return _dispatch(args)
    except KisshaError as exc:
        print(f"kissha: {exc}", file=sys.stderr)
        if args.debug:
            _traceback(exc.__cause__ or exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kissha: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A file or directory outside a run's own handling (the lock, the state...).
        from kissha.errors import EnvError

        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kissha: {where}{exc.strerror or exc}", file=sys.stderr)
        if args.debug:
            _traceback(exc)
        return EnvError.exit_code
    except Exception as exc:
        print(
            f"kissha: internal error: {type(exc).__name__}: {exc}"
            + ("" if args.debug else " (use --debug for the traceback)"),
            file=sys.stderr,
        )
        if args.debug:
            _traceback(exc)
        return Exit.INTERNAL


def run() -> None:
    """The program (``kissha`` and ``python -m kissha``): main(), then its exit code.

    A ``failover`` run, what cron starts every minute, ends without the interpreter's
    teardown (freeing every object one by one): 19 ms of a no-change run's ~150 ms of
    CPU (bench/ab_nochange.py, issue 13's notes). Its files are written and closed by
    then (os.replace, with-blocks), so only the output streams and logging are
    flushed first; every other command exits as Python does."""
    code = main()
    if _command_of(sys.argv[1:]) == "failover":
        logging.shutdown()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: what Python's own exit would report
            code = code or 120
        os._exit(code)
    raise SystemExit(code)


def _traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(exc, file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    from kissha import config as configmod

    if args.command == "failover":
        now = parse_now(args.now)
        cfg = configmod.load(args.config)
        from kissha import output
        from kissha.core.report import RunReport
        from kissha.engine import failover
        from kissha.errors import RunFailed

        with _finish_on_sigterm():
            try:
                report = failover.run(cfg, now, dry_run=args.dry_run)
            except RunFailed as exc:
                # Whatever stopped the run, its output still shows probes, health and the
                # decision; main() adds the one-line error and returns its code.
                assert isinstance(exc.report, RunReport)
                report = exc.report
                _print_run(report, args.json, output)
                raise
        if args.quiet and report.exit_code == 0 and not report.recovered:
            return 0
        _print_run(report, args.json, output)
        return report.exit_code
    if args.command == "daemon":
        cfg = configmod.load(args.config)
        from kissha.engine.daemon import Daemon

        # The daemon's output is its log (stderr, e.g. the journal): one line a change.
        logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
        return Daemon(args.config, cfg, interval=args.interval, verbose=args.verbose).serve()
    if args.command == "check-config":
        return _check_config(args.config, args.json)
    if args.command in ("pin", "unpin"):
        cfg = configmod.load(args.config)
        return _pin(cfg, args)
    if args.command == "status":
        return _status(args)
    if args.command == "page":
        return _page(args)
    if args.command == "certs":
        from kissha.certs import command

        text, code = command.certs(args, args.config, parse_now(args.now))
        sys.stdout.write(text)
        return code
    if args.command == "challenges":
        from kissha.certs import command

        logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
        return command.challenges(args.config, args.listen)
    if args.command == "render":
        from kissha.render import command as render_command

        text, code = render_command.run(args, args.config)
        sys.stdout.write(text)
        return code
    if args.command == "deploy":
        from kissha.deploy import command as deploy_command

        text, code = deploy_command.run(args, args.config)
        sys.stdout.write(text)
        return code
    if args.command == "publish":
        from kissha.deploy import command as deploy_command

        text, code = deploy_command.run_publish(args, args.config)
        sys.stdout.write(text)
        return code
    if args.command == "init":
        from kissha.render import init

        sys.stdout.write(init.run(args))
        return 0
    if args.command == "monitor":
        return _monitor(args)
    raise UsageError(f"unknown command {args.command!r}")


def _print_run(report: Any, as_json: bool, output: Any) -> None:
    if as_json:
        _print_json(output.as_json(report))
    else:
        sys.stdout.write(output.text(report))


@contextlib.contextmanager
def _finish_on_sigterm() -> Iterator[None]:
    """SIGTERM (a shutdown, systemd stopping a unit) during a run: as the daemon does, the
    run finishes (or rolls back) first, then kissha exits; a second SIGTERM as well."""
    import signal

    got: list[int] = []

    def on_term(signum: int, frame: object) -> None:
        if not got:
            print("kissha: SIGTERM: finishing this run first", file=sys.stderr)
        got.append(signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _check_config(path: Path, as_json: bool) -> int:
    from kissha.engine import checkconfig

    report = checkconfig.run(path)
    if as_json:
        _print_json(checkconfig.as_json(report))
        return report.exit_code
    out, err = checkconfig.text(report)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return report.exit_code


def _pin(cfg: Any, args: argparse.Namespace) -> int:
    from kissha.core.model import Pin, iso
    from kissha.engine import state as statefile
    from kissha.files import RunLock

    now = time.time()
    with RunLock(cfg.state_dir / "lock"):
        st, _ = statefile.load(cfg.state_dir)
        if args.command == "pin":
            if args.node not in cfg.node_names:
                raise UsageError(
                    f"no such node: {args.node!r} (nodes: {', '.join(cfg.node_names)})"
                )
            until = now + parse_duration(args.duration) if args.duration else None
            st.pin = Pin(args.node, until)
            what = f"pinned to {args.node}" + ("" if until is None else f" until {iso(until)}")
            st.add_event(now, "pin", what)
        else:
            what = "unpinned" if st.pin else "no pin was set"
            if st.pin:
                st.add_event(now, "unpin", f"pin to {st.pin.node} removed")
            st.pin = None
        statefile.save(cfg.state_dir, st)
    print(f"kissha: {what}; the next failover run applies it")
    return 0


def _status(args: argparse.Namespace) -> int:
    """kissha status; with --nagios every outcome, errors included, is one line and 0-3."""
    from kissha import config as configmod
    from kissha.observe import status, statustext, verdict

    try:
        try:
            stale_after = parse_duration(args.stale_after)
        except UsageError:
            raise UsageError(f"--stale-after: not a duration: {args.stale_after!r}") from None
        if not 0 < args.port < 65536:
            raise UsageError(f"--port: not a port: {args.port}")
        cfg = configmod.load(args.config)
        if args.notify and cfg.notify is None:
            raise UsageError("--notify needs a [notify] table in the config")
        now = parse_now(args.now)
        report = status.collect(cfg, now, port=args.port, stale_after=stale_after)
        if args.notify:
            from kissha.notify.watch import from_status

            # Delivery problems are logged (stderr); the verdict below is unchanged.
            from_status(cfg, report.observation.views, now)
    except Exception as exc:
        if not args.nagios or (args.debug and not isinstance(exc, KisshaError)):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"KISSHA UNKNOWN - {first}".replace("|", "/"))
        return verdict.UNKNOWN
    v = report.verdict
    if args.nagios:
        print(statustext.nagios_line(v))
        return v.level
    certs: list[Any] | None = None
    if cfg.certs is not None:  # what the last kissha certs run recorded (certs.json)
        from kissha.certs import summary

        certs = summary.load(cfg.state_dir)
    if args.json:
        doc = statustext.as_json(report)
        if certs is not None:
            doc["certificates"] = summary.as_json(certs)
        _print_json(doc)
    else:
        sys.stdout.write(statustext.text(report))
        if certs is not None:
            sys.stdout.write("\n".join(summary.text(certs)) + "\n")
    return {verdict.OK: Exit.OK, verdict.WARNING: 1}.get(v.level, Exit.CRITICAL)


def _page(args: argparse.Namespace) -> int:
    from kissha import config as configmod
    from kissha.engine import state as statefile
    from kissha.observe import page

    cfg = configmod.load(args.config)
    if args.out is None and cfg.page.dir is None:
        raise UsageError(f"page: no [page] dir in {cfg.source}; give --out DIR")
    port = cfg.page.port if args.port is None else args.port
    if not 0 < port < 65536:
        raise UsageError(f"--port: not a port: {port}")
    st, warning = statefile.load_readonly(cfg.state_dir)
    if warning:
        print(f"kissha: warning: {warning}", file=sys.stderr)
    directory, size = page.from_state(cfg, parse_now(args.now), st, port, args.out)
    print(f"kissha: wrote {directory / 'index.html'} ({size // 1024} KB) and status.json")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    """kissha monitor; with --nagios every outcome, errors included, is one line and 0-3."""
    from kissha.monitor import command

    try:
        out, code = command.main(args, args.config, parse_now(args.now))
    except Exception as exc:
        if not args.nagios or (args.debug and not isinstance(exc, KisshaError)):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"KISSHA MONITOR UNKNOWN - {first}".replace("|", "/"))
        return 3
    sys.stdout.write(out)
    return code
