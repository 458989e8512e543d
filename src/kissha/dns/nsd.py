"""nsd: validate with nsd-checkzone (in parallel) or, for many zones, one throwaway nsd;
reload once with nsd-control."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from kissha.dns.filezones import FileZoneServer
from kissha.errors import ApplyFailed, EnvError

log = logging.getLogger(__name__)

# "[2026-11-24 19:21:41.954] nsd-checkzone[21841]: error: ": time and pid vary per run.
_LOG_PREFIX = re.compile(r"^\[[^\]]*\] [\w.-]+\[\d+\]: ")
# From this many files on, one throwaway nsd reads them all (see _check_batch). Wall
# time, 63-line zones, nsd 4.6.1, 2 CPUs shared with other work (medians of 3):
#   zones             4      8     16     32     64   1,000
#   one nsd          86     89     93     98     93     300 ms (~85 ms to start)
#   nsd-checkzone    18     32     61    112    250   5,929 ms (one per file, 4 at once)
BATCH_FROM = 32
# What the throwaway nsd logs at verbosity 1 (after _LOG_PREFIX): one line per zone
# it loaded, and one when every zone has been read.
_LOADED = re.compile(r"^info: zone (\S+) read with success$")
_STARTED = re.compile(r"^notice: nsd started \(")


class _BatchUnusable(Exception):
    """The throwaway nsd could not say anything: check each file on its own instead."""


class NsdServer(FileZoneServer):
    """nsd loads zone files; ``nsd-control reload`` re-reads those whose mtime changed.

    nsd-control prints "ok" even when a zone file is broken (nsd then answers SERVFAIL),
    so files are checked before they are installed and answers are verified after.
    """

    def check(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        nsd = self._nsd_program() if len(items) >= BATCH_FROM else None
        if nsd is None:
            return self._check_each(items)
        try:
            loaded = self._check_batch(nsd, items)
        except _BatchUnusable as exc:
            log.debug("one nsd for %d zone files: %s; checking each file", len(items), exc)
            return self._check_each(items)
        # What nsd did not load goes through nsd-checkzone: its verdict and its words.
        return self._check_each([(z, p) for z, p in items if z not in loaded])

    def _nsd_program(self) -> str | None:
        """The nsd beside the configured nsd-checkzone, when it is the plain tool (a
        wrapper or extra arguments may mean another environment: then per file)."""
        if len(self.dns.checkzone) != 1:
            return None
        checkzone = self.dns.checkzone[0]
        if Path(checkzone).name != "nsd-checkzone":
            return None
        found = shutil.which(checkzone)
        if found is None:
            return None
        nsd = Path(found).with_name("nsd")
        return str(nsd) if os.access(nsd, os.X_OK) else None

    def _check_batch(self, nsd: str, items: Sequence[tuple[str, Path]]) -> set[str]:
        """The zones (of ``items``) that one nsd, started on a scratch configuration
        listing them all, loads: nsd-checkzone and nsd read a file with the same code
        (zonec_read) and refuse it on the same errors, so a file nsd loads is one
        nsd-checkzone passes (tests/integration/test_nsd_batch.py compares them file by
        file). It listens on no socket (do-ip4/do-ip6 off), writes only in a temporary
        directory, and is stopped as soon as it says it started: every zone is read by
        then. ~0.3 s for 1,000 zones instead of ~2 s of nsd-checkzone processes.

        Raise _BatchUnusable when it cannot tell (the caller checks each file)."""
        names: dict[str, str] = {}
        for zone, path in items:
            name = zone.rstrip(".") or "."
            text = f"{name}{path}{self.dns.zones_dir}"
            if name in names or any(c in '"\\\n\r' for c in text) or " " in name:
                raise _BatchUnusable(f"cannot write {name!r} into a scratch nsd.conf")
            names[name] = zone
        import tempfile  # here: ~10 ms of imports (random...) a run that checks nothing skips

        with tempfile.TemporaryDirectory(prefix="kissha-nsd-") as scratch:
            conf = Path(scratch) / "nsd.conf"
            conf.write_text(_scratch_conf(scratch, self.dns.zones_dir, items))
            try:
                proc = subprocess.Popen(
                    [nsd, "-d", "-c", str(conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=scratch,
                    # nsd forks children: a group of its own, so that killpg reaches them.
                    start_new_session=True,
                )
            except OSError as exc:
                raise _BatchUnusable(f"cannot run {nsd}: {exc.strerror or exc}") from None
            try:
                lines = _read_until_started(proc, self.dns.command_timeout)
            finally:
                _stop(proc)
        loaded = set()
        for line in lines:
            m = _LOADED.match(line)
            if m and m.group(1) in names:
                loaded.add(names[m.group(1)])
        return loaded

    def _check_each(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        # nsd-checkzone costs ~3 ms, most of it process start-up: run one per CPU at once.
        errors: dict[str, str] = {}
        width = max(2, (os.cpu_count() or 1) * 2)
        running: list[tuple[str, subprocess.Popen[bytes]]] = []
        queue = list(items)

        def reap(zone: str, proc: subprocess.Popen[bytes]) -> None:
            try:
                out, _ = proc.communicate(timeout=self.dns.command_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                errors[zone] = f"{self.dns.checkzone[0]} timed out"
                return
            if proc.returncode != 0:
                text = [_LOG_PREFIX.sub("", t) for t in out.decode(errors="replace").splitlines()]
                errors[zone] = " | ".join(t for t in text[:3] if t) or (
                    f"exit status {proc.returncode}"
                )

        while queue or running:
            while queue and len(running) < width:
                zone, path = queue.pop(0)
                argv = [*self.dns.checkzone, zone.rstrip(".") or ".", str(path)]
                try:
                    proc = subprocess.Popen(
                        argv,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        cwd=self.dns.zones_dir,
                    )
                except OSError as exc:
                    for _, running_proc in running:
                        running_proc.kill()
                        running_proc.communicate()
                    raise EnvError(
                        f"{argv[0]}: cannot run it (dns.checkzone): {exc.strerror or exc}"
                    ) from None
                running.append((zone, proc))
            reap(*running.pop(0))
        return errors

    def tools(self) -> list[tuple[str, str]]:
        return [("dns.checkzone", self.dns.checkzone[0]), ("dns.control", self.dns.control[0])]

    def reload(self, zones: Sequence[str] | None = None) -> None:
        """``nsd-control reload`` reads every changed file; with ``zones``, one
        ``reload ZONE`` each (~10 ms a zone) reads only those."""
        for zone in [None] if zones is None else zones:
            self._control("reload", *([] if zone is None else [zone.rstrip(".") or "."]))

    def _control(self, *args: str) -> None:
        argv = [*self.dns.control, *args]
        try:
            proc = subprocess.run(
                argv, capture_output=True, timeout=self.dns.command_timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ApplyFailed(f"{' '.join(argv)} timed out") from None
        except OSError as exc:
            raise ApplyFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        if proc.returncode != 0 or not output.startswith("ok"):
            first = output.splitlines()[0] if output else f"exit status {proc.returncode}"
            raise ApplyFailed(f"nsd reload failed: {first}")


def _scratch_conf(scratch: str, zones_dir: Path, items: Sequence[tuple[str, Path]]) -> str:
    """A configuration that reads the files as the real nsd would (zonesdir is the
    zones directory: relative $INCLUDEs resolve there, as for nsd-checkzone run in it)
    and touches nothing outside ``scratch``."""
    lines = [
        "server:",
        "    do-ip4: no",
        "    do-ip6: no",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{zones_dir}"',
        '    database: ""',
        f'    zonelistfile: "{scratch}/zone.list"',
        f'    pidfile: "{scratch}/nsd.pid"',
        f'    xfrdfile: "{scratch}/xfrd.state"',
        f'    xfrdir: "{scratch}"',
        '    logfile: "/dev/stdout"',
        "    server-count: 1",
        "    verbosity: 1",
        "    zonefiles-write: 0",
        "remote-control:",
        "    control-enable: no",
    ]
    for zone, path in items:
        name = zone.rstrip(".") or "."
        lines += ["zone:", f'    name: "{name}"', f'    zonefile: "{path}"']
    return "\n".join(lines) + "\n"


def _read_until_started(proc: subprocess.Popen[bytes], timeout: float) -> list[str]:
    """nsd's log lines (prefix removed) up to "nsd started"; _BatchUnusable if it exits
    or takes longer than ``timeout`` first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _BatchUnusable(f"nsd did not start within {timeout:g} s")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                tail = " | ".join(lines[-2:])
                raise _BatchUnusable(f"nsd exited before it started: {tail}")
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = _LOG_PREFIX.sub("", raw.decode(errors="replace"))
                lines.append(line)
                if _STARTED.match(line):
                    return lines


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM nsd's whole group, KILL it after a second; reap."""
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the parent
    if proc.stdout is not None:
        proc.stdout.close()
