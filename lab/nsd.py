"""Run a real nsd from a scratch directory for tests and the demo."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

START_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
STOP_TIMEOUT = 5.0
TOOL_TIMEOUT = 30.0
# sun_path is 108 bytes on Linux including the NUL; nsd fails obscurely past that.
MAX_SOCKET_PATH = 107


def _quote(value: str) -> str:
    # nsd.conf strings may be double-quoted; quoting keeps paths with spaces intact.
    if '"' in value or "\n" in value:
        raise ValueError(f"cannot put {value!r} into nsd.conf")
    return f'"{value}"'


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: missing)"
    return f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def render_conf(
    directory: Path, listen: Sequence[tuple[str, int]], zones: Mapping[str, str]
) -> str:
    """The nsd.conf text for an instance rooted at directory."""
    d = str(directory)
    lines = ["server:"]
    lines += [f"    ip-address: {addr}@{port}" for addr, port in listen]
    lines += [
        f"    port: {listen[0][1]}",
        # Empty username: stay the invoking user, so files in directory stay writable.
        '    username: ""',
        f"    zonesdir: {_quote(d)}",
        # No database: zones are read straight from the zone files.
        '    database: ""',
        f"    zonelistfile: {_quote(d + '/zone.list')}",
        f"    pidfile: {_quote(d + '/nsd.pid')}",
        f"    xfrdfile: {_quote(d + '/xfrd.state')}",
        f"    xfrdir: {_quote(d)}",
        f"    logfile: {_quote(d + '/nsd.log')}",
        "    server-count: 1",
        "    verbosity: 1",
        "remote-control:",
        "    control-enable: yes",
        # A unix socket needs no TLS keys (nsd-control-setup) unlike a TCP control port.
        f"    control-interface: {_quote(d + '/nsd.ctl')}",
    ]
    for name, zonefile in zones.items():
        lines += ["zone:", f"    name: {_quote(name)}", f"    zonefile: {_quote(zonefile)}"]
    return "\n".join(lines) + "\n"


def _answers_soa(zone: str, address: str, port: int) -> bool:
    # Imported here so that merely importing lab does not require dnspython.
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    query = dns.message.make_query(zone, "SOA")
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        # Before nsd binds, the kernel answers with ICMP port unreachable (ECONNREFUSED).
        return False
    # nsd says REFUSED for zones it has not loaded, so NOERROR means the zone is served.
    return response.rcode() == dns.rcode.NOERROR


# Answers "does nsd serve zone on address@port yet?" during start-up.
ReadyCheck = Callable[[str, str, int], bool]


class NsdInstance:
    """One nsd process serving zones from directory; use as a context manager.

    command_prefix runs nsd through another command, e.g. ``["ip", "netns", "exec", NS]``
    for a node in a network namespace; then ready must ask from inside that namespace
    too, since the default check queries from the current one.
    """

    def __init__(
        self,
        directory: Path,
        listen: Sequence[tuple[str, int]],
        zones: Mapping[str, str],
        *,
        command_prefix: Sequence[str] = (),
        ready: ReadyCheck = _answers_soa,
    ) -> None:
        if not listen or not zones:
            raise ValueError("nsd needs at least one listen address and one zone")
        self.directory = directory.resolve()
        self.listen = list(listen)
        self.zones = dict(zones)
        self.command_prefix = list(command_prefix)
        self.ready = ready
        self.conf = self.directory / "nsd.conf"
        self.output = self.directory / "nsd.out"
        self.logfile = self.directory / "nsd.log"
        control = self.directory / "nsd.ctl"
        if len(os.fsencode(control)) > MAX_SOCKET_PATH:
            raise ValueError(f"{control} is too long for a unix socket; use a shorter directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_conf(self.directory, self.listen, self.zones))
        self._process: subprocess.Popen[bytes] | None = None
        self._output_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def control_argv(self) -> list[str]:
        return ["nsd-control", "-c", str(self.conf)]

    def control(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run an nsd-control command (e.g. "reload"), raising if it fails."""
        done = subprocess.run(
            [*self.control_argv, *command], capture_output=True, text=True, timeout=TOOL_TIMEOUT
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"nsd-control {' '.join(command)} failed: {done.stdout}{done.stderr}"
            )
        return done

    def start(self) -> None:
        """Start nsd and wait until it answers SOA for the first zone; RuntimeError if not."""
        if self.running:
            return
        self._output_file = self.output.open("ab")
        self._process = subprocess.Popen(
            [*self.command_prefix, "nsd", "-d", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._output_file,
            stderr=subprocess.STDOUT,
            # Own process group: nsd forks xfrd and server children, and a SIGKILLed
            # parent would orphan them; killpg on the group reaches them all.
            start_new_session=True,
        )
        zone = next(iter(self.zones))
        address, port = self.listen[0]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                problem = f"nsd exited early with status {self._process.returncode}"
                break
            if self.ready(zone, address, port):
                return
            if time.monotonic() >= deadline:
                problem = (
                    f"nsd did not answer SOA {zone} on {address}@{port} within {START_TIMEOUT}s"
                )
                break
            time.sleep(POLL_INTERVAL)
        self.stop()
        raise RuntimeError(f"{problem}\n{_tail(self.output)}\n{_tail(self.logfile)}")

    def stop(self) -> None:
        """SIGTERM nsd, SIGKILL its process group after STOP_TIMEOUT; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT)
            # Sweep the group even after a clean exit in case a child outlived the parent.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
        if self._output_file is not None:
            self._output_file.close()
            self._output_file = None

    def __enter__(self) -> NsdInstance:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def checkzone_ok(zone: str, path: Path) -> tuple[bool, str]:
    """Validate a zone file with nsd-checkzone; returns (ok, combined output)."""
    done = subprocess.run(
        ["nsd-checkzone", zone, str(path)], capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()
