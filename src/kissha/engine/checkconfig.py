"""kissha check-config: the config, the environment and every zone, checked as a run needs.

It touches nothing (a probe file in each directory kissha writes to is created and
removed at once). Exit codes, as in the README:

- 0: no problem (warnings, e.g. comments that almost match the mark, do not count);
- 2: the config is invalid (also [monitor]'s checks that cannot be built), or the
  environment cannot work: the zones directory is missing, not a directory or not
  writable, no zone file matches, the state directory cannot be written, or
  ``dns.checkzone`` / ``dns.control`` is not found;
- 5: the environment is fine but a zone file has problems: kissha cannot plan it (each
  problem with file:line), or nsd-checkzone refuses it as nsd would load it.

The CLI prints the report (``text``, ``as_json``); this module only collects it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config import Config, ZoneRef
from kissha.errors import ConfigError, capped
from kissha.exits import Exit

SCHEMA = "kissha.check-config/1"

# "[2026-11-24 19:21:41.954] nsd-checkzone[21841]: " : time and pid vary per run.
_LOG_PREFIX = re.compile(r"^\[[^\]]*\] [\w.-]+\[\d+\]: ")
_NSD_LINE = re.compile(r"^(?P<level>error|warning): (?P<file>.+?):(?P<line>\d+): (?P<message>.*)$")


@dataclass(frozen=True)
class ZoneSummary:
    zone: str
    file: str
    marked: int
    serial: str | None


@dataclass(frozen=True)
class CheckReport:
    source: str
    config: Config | None  # None: the config itself is invalid
    environment: tuple[str, ...]  # exit 2: the setup cannot work
    zone_problems: tuple[str, ...]  # exit 5: zone files, each file:line
    warnings: tuple[str, ...]
    zones: tuple[ZoneSummary, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return self.environment + self.zone_problems

    @property
    def exit_code(self) -> int:
        if self.config is None or self.environment:
            return Exit.CONFIG
        return Exit.ZONES_FAILED if self.zone_problems else Exit.OK


def run(path: Path) -> CheckReport:
    """Check the config at ``path``, the directories and tools it names, and its zones."""
    from kissha import config as configmod

    try:
        cfg = configmod.load(path)
    except ConfigError as exc:
        where = f"{exc.source}: " if exc.source else ""
        return CheckReport(str(path), None, tuple(where + p for p in exc.problems), (), ())
    environment: list[str] = _monitor(cfg)
    refs = _zone_files(cfg, environment)
    environment += _directories(cfg, refs)
    environment += _tools(cfg)
    # nsd first, all zones at once; then each zone's problems together: kissha's, nsd's.
    nsd: dict[Path, tuple[list[str], list[str]]] = {}
    if shutil.which(cfg.dns.checkzone[0]) is not None:
        nsd = _checkzone(cfg, [ref for ref in refs if ref.path.is_file()])
    problems: list[str] = []
    warnings: list[str] = []
    zones: list[ZoneSummary] = []
    for ref in refs:
        summary = _zone(cfg, ref, problems, warnings)
        if summary is not None:
            zones.append(summary)
        nsd_problems, nsd_warnings = nsd.get(ref.path, ([], []))
        problems += nsd_problems
        warnings += nsd_warnings
    return CheckReport(
        cfg.source, cfg, tuple(environment), tuple(problems), tuple(warnings), tuple(zones)
    )


def _monitor(cfg: Config) -> list[str]:
    """[monitor]'s checks as kissha monitor builds them, on every node: an unknown
    generated check named, a dependency on no check, a cycle (the parser checks each
    key alone; these need the whole list)."""
    if cfg.monitor is None:
        return []
    from kissha.monitor.checks import for_node

    out: list[str] = []
    for node in cfg.nodes:  # each node's own checks: [[monitor.checks]] nodes = [...]
        try:
            for_node(cfg, None, node.name)
        except ConfigError as exc:
            where = f"{exc.source}: " if exc.source else ""
            out += [where + p for p in exc.problems if where + p not in out]
    return out


def _zone_files(cfg: Config, environment: list[str]) -> list[ZoneRef]:
    from kissha.engine.zones import managed_zones

    refs, problems = managed_zones(cfg.dns)
    environment += problems
    return refs


def _probe_write(directory: Path) -> str | None:
    """Why a file cannot be created in ``directory`` (a real write: read-only mounts,
    ACLs and full disks fool os.access), or None."""
    try:
        fd, name = tempfile.mkstemp(prefix=".kissha-check-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        os.write(fd, b"kissha check-config\n")
        os.fsync(fd)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
        os.unlink(name)
    return None


def _directories(cfg: Config, refs: list[ZoneRef]) -> list[str]:
    """kissha writes zone files next to themselves (their link targets' directory), its
    state in state_dir: each must take a new file."""
    out: list[str] = []
    zones_dir = cfg.dns.zones_dir
    dirs = {zones_dir} if zones_dir.is_dir() else set()
    dirs |= {ref.path.resolve().parent for ref in refs if ref.path.exists()}
    for d in sorted(dirs):
        why = _probe_write(d)
        if why:
            what = (
                "the zones directory (dns.zones_dir)" if d == zones_dir else "zone files' directory"
            )
            out.append(f"{d}: {what} is not writable: {why}")
    state = cfg.state_dir
    if state.is_dir():
        why = _probe_write(state)
        if why:
            out.append(f"{state}: the state directory (state_dir) is not writable: {why}")
    elif state.exists():
        out.append(f"{state}: the state directory (state_dir) is not a directory")
    else:
        # The first run creates it: its nearest existing parent must let it.
        parent = state.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
            out.append(
                f"{state}: the state directory (state_dir) does not exist and cannot be "
                f"created in {parent}"
            )
    return out


def _tools(cfg: Config) -> list[str]:
    out = []
    for key, argv in (("dns.checkzone", cfg.dns.checkzone), ("dns.control", cfg.dns.control)):
        if shutil.which(argv[0]) is None:
            out.append(f"{key}: {argv[0]}: command not found (not on PATH, or not executable)")
    return out


def _zone(
    cfg: Config, ref: ZoneRef, problems: list[str], warnings: list[str]
) -> ZoneSummary | None:
    from kissha.core.zonefile import check
    from kissha.errors import ZoneError

    try:
        text = ref.read()
    except ZoneError as exc:
        problems.append(str(exc))
        return None
    c = check(text, ref.name, str(ref.path))
    problems += c.problems
    warnings += c.warnings
    for rec in c.scan.marked:
        for node in cfg.nodes:
            if node.address(rec.family) is None:
                problems.append(
                    f"{ref.path}:{rec.address.line + 1}: {rec.owner} {rec.rrtype} is marked "
                    f"but node {node.name} has no {rec.family} address"
                )
    serial = c.scan.serial.text if c.scan.serial else None
    return ZoneSummary(ref.name, str(ref.path), len(c.scan.marked), serial)


def _checkzone(cfg: Config, refs: list[ZoneRef]) -> dict[Path, tuple[list[str], list[str]]]:
    """Each zone file as nsd would load it: (errors, warnings) of nsd-checkzone, by file."""
    width = max(2, (os.cpu_count() or 1) * 2)
    out: dict[Path, tuple[list[str], list[str]]] = {}
    running: list[tuple[ZoneRef, subprocess.Popen[bytes]]] = []
    queue = list(refs)
    while queue or running:
        while queue and len(running) < width:
            ref = queue.pop(0)
            # Absolute: it runs in the zones directory ($INCLUDE paths are relative to it),
            # and a config named by a relative path gives relative zone paths.
            path = ref.path.absolute()
            argv = [*cfg.dns.checkzone, ref.name.rstrip(".") or ".", str(path)]
            try:
                proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cfg.dns.zones_dir
                )
            except OSError as exc:
                out[ref.path] = ([f"{ref.path}: cannot run {argv[0]}: {exc.strerror or exc}"], [])
                continue
            running.append((ref, proc))
        if running:
            ref, proc = running.pop(0)
            out[ref.path] = _reap(cfg, ref, proc)
    return out


def _reap(cfg: Config, ref: ZoneRef, proc: subprocess.Popen[bytes]) -> tuple[list[str], list[str]]:
    tool = cfg.dns.checkzone[0]
    try:
        output, _ = proc.communicate(timeout=cfg.dns.command_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return [f"{ref.path}: {tool} timed out after {cfg.dns.command_timeout:g} s"], []
    lines = [_LOG_PREFIX.sub("", t).strip() for t in output.decode(errors="replace").splitlines()]
    errors: list[str] = []
    warnings: list[str] = []
    for line in lines:
        m = _NSD_LINE.match(line)
        if m:
            said = f"{m['file']}:{m['line']}: {tool}: {m['message']}"
            (errors if m["level"] == "error" else warnings).append(said)
    if proc.returncode != 0 and not errors:
        said = " | ".join(t for t in lines[:3] if t) or f"exit status {proc.returncode}"
        errors.append(f"{ref.path}: {tool}: {said}")
    return errors, warnings


def as_json(report: CheckReport) -> dict[str, Any]:
    cfg = report.config
    return {
        "schema": SCHEMA,
        "config": report.source,
        "ok": report.exit_code == Exit.OK,
        "exit_code": report.exit_code,
        "nodes": [n.name for n in cfg.nodes] if cfg else [],
        "zones": [
            {"zone": z.zone, "file": z.file, "marked": z.marked, "serial": z.serial}
            for z in report.zones
        ],
        "problems": capped(list(report.problems)),
        "problems_total": len(report.problems),
        "warnings": capped(list(report.warnings)),
        "warnings_total": len(report.warnings),
    }


def text(report: CheckReport) -> tuple[str, str]:
    """(stdout, stderr): the summary, then each problem and warning on its own line."""
    err = [f"kissha: {p}\n" for p in capped(list(report.problems))]
    err += [f"kissha: warning: {w}\n" for w in capped(list(report.warnings))]
    cfg = report.config
    if cfg is None:
        return "", "".join(err)
    n = len(report.problems)
    verdict = "ok" if report.exit_code == Exit.OK else f"{n} problem{'s' if n != 1 else ''}"
    out = [
        f"{report.source}: {verdict}; nodes: {', '.join(x.name for x in cfg.nodes)} "
        f"(default master {cfg.default_master}, rotation {cfg.rotation})\n"
    ]
    for z in report.zones:
        out.append(f"  {z.zone:<30} {z.marked:>4} marked record(s)  {z.file}\n")
    return "".join(out), "".join(err)
