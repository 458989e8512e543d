"""A network lab: two nodes and a client in network namespaces on one bridge, with faults.

Each node runs what a real kissha node runs: nsd with its own copy of seed-style zones,
an HTTPS server, molly-brown for Gemini, and kissha with its own config
(``Lab(services=False)``: none of them, the network only; see lab/sshnode.py). The client
namespace is where every query and fetch comes from: nothing in here ever connects to a
lab address from the namespace the lab was started in.

Needs root, real or in a user namespace (``scripts/isolated`` provides either). Build it
with ``with Lab() as lab:``; everything it started stops, and every namespace it made is
deleted, on exit, on an exception, at interpreter exit and on SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Literal

import kissha
from lab import faults, netns
from lab.certs import CertPair, issue, make_ca
from lab.faults import Family
from lab.netlab_text import (
    DNS_PORT,
    GEMINI_PORT,
    HTTPS_PORT,
    config_text,
    molly_config,
    parse_dig,
)
from lab.nsd import NsdInstance
from lab.site import DEFAULT_ZONES, ZONE_TEMPLATE, LabNode

log = logging.getLogger(__name__)

NODES = (
    LabNode("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8:1::11"),
    LabNode("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8:1::12"),
)
CLIENT = LabNode("client", "client.example.org", "198.51.100.13", "2001:db8:1::13")
SWITCH = "sw"
Service = Literal["web", "gemini", "nsd", "sink"]  # "sink": the client's mail/webhook
SERVICES: tuple[Service, ...] = ("web", "gemini", "nsd")  # what every node serves

SERIAL = 1700000000
START_TIMEOUT = 10.0
SINK_SMTP_PORT, SINK_HTTP_PORT = 2525, 8080  # on the client
COMMAND_TIMEOUT = 30.0
# k<pid>x<n>-<role>: the pid tells cleanup_stale whether the lab's owner is still alive.
NS_PATTERN = re.compile(r"^k(\d+)x\d+-[a-z]+$")
ROOT_PATTERN = re.compile(r"^klab(\d+)-")

_sequence = itertools.count(1)


@dataclass(frozen=True)
class _Started:
    process: subprocess.Popen[bytes]
    log: Path


class Lab:
    """Two nodes and a client on one bridge; see the module docstring."""

    # Which service names stop() and start() understand, for callers that iterate.
    services: ClassVar[tuple[Service, ...]] = SERVICES

    def __init__(
        self,
        zones: Sequence[str] = DEFAULT_ZONES,
        health: Mapping[str, object] | None = None,
        template: str = ZONE_TEMPLATE,
        rotation: str = "weekly",
        services: bool = True,
    ) -> None:
        self.nodes: tuple[LabNode, ...] = NODES
        self.client = CLIENT
        self.zones = tuple(zones)
        self.health = dict(health or {})
        self.template = template
        # "off" for anything that runs at the real time (the daemon): no --now to pin it.
        self.rotation = rotation
        # False: the network only, no server on any node (a deploy test brings up its own).
        self.with_services = services
        self.prefix = f"k{os.getpid()}x{next(_sequence)}-"
        self.root = Path("/")
        self.ca: CertPair | None = None
        self.teardown_problems: list[str] = []
        self._namespaces: list[str] = []
        self._nsd: dict[str, NsdInstance] = {}
        self._procs: dict[tuple[str, Service], _Started] = {}
        self._daemons: dict[str, _Started] = {}
        self._pids: set[int] = set()
        self._torn_down = False

    # -- names ---------------------------------------------------------------------------

    def ns(self, host: str) -> str:
        """The namespace of a node, of "client" or of "sw" (the switch)."""
        if host not in (SWITCH, self.client.name, *(n.name for n in self.nodes)):
            raise ValueError(f"no such lab host: {host!r}")
        return self.prefix + host

    def node(self, name: str) -> LabNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ValueError(f"no such lab node: {name!r}")

    def address(self, name: str, family: Family) -> str:
        host = self.client if name == self.client.name else self.node(name)
        return host.ipv4 if family == "ipv4" else host.ipv6

    def node_root(self, name: str) -> Path:
        return self.root / self.node(name).name

    def config_path(self, name: str) -> Path:
        return self.node_root(name) / "kissha.toml"

    def zone_path(self, name: str, zone: str) -> Path:
        return self.node_root(name) / "zones" / f"{zone}.zone"

    @property
    def namespaces(self) -> list[str]:
        return list(self._namespaces)

    @property
    def pids(self) -> set[int]:
        """Every PID the lab started (servers and kissha daemons; one-off kissha runs
        excluded), stopped or not."""
        return set(self._pids)

    # -- set-up and teardown -------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Build the network and start every service; close() undoes it, even half-done."""
        netns.register(self.close)
        self.root = Path(tempfile.mkdtemp(prefix=f"klab{os.getpid()}-", dir="/tmp"))
        self._build_network()
        if not self.with_services:
            return
        self.ca = make_ca(self.root / "pki")
        for node in self.nodes:
            self._prepare_node(node)
        # Servers start in parallel: each Python server takes ~0.1 s just to import.
        for node in self.nodes:
            self._spawn_web(node)
            self._spawn_gemini(node)
        for node in self.nodes:
            self._start_nsd(node)
        for node in self.nodes:
            self._await_web(node)
            self._await_gemini(node)

    def close(self) -> None:
        """Stop everything, delete the namespaces and files; safe to call twice."""
        if self._torn_down:
            return
        self._torn_down = True
        steps: list[tuple[str, Callable[[], object]]] = []
        for name in list(self._daemons):
            steps.append((f"stop the daemon on {name}", functools.partial(self.stop_daemon, name)))
        for name, service in list(self._procs):
            steps.append(
                (f"stop {service} on {name}", functools.partial(self._stop_service, name, service))
            )
        for name, nsd in self._nsd.items():
            steps.append((f"stop nsd on {name}", nsd.stop))
        for ns in reversed(self._namespaces):
            steps.append(
                (f"kill processes in {ns}", functools.partial(netns.kill_processes_in, ns))
            )
        for ns in reversed(self._namespaces):
            steps.append(
                (f"delete namespace {ns}", functools.partial(netns.ip, "netns", "del", ns))
            )
        if self.root != Path("/"):
            steps.append((f"remove {self.root}", functools.partial(shutil.rmtree, self.root)))
        for what, step in steps:
            try:
                step()
            except Exception as e:  # one failed step must not leave the rest behind
                self.teardown_problems.append(f"{what}: {e}")
                log.warning("lab teardown: %s: %s", what, e)
        netns.unregister(self.close)

    def leftovers(self) -> list[str]:
        """What of this lab still exists: namespaces, live PIDs, files (empty after close)."""
        left = [f"namespace {ns}" for ns in netns.names() if ns in self._namespaces]
        left += [f"process {pid}" for pid in sorted(self._pids) if netns.pid_alive(pid)]
        if self.root != Path("/") and self.root.exists():
            left.append(f"directory {self.root}")
        return left

    @classmethod
    def cleanup_stale(cls) -> list[str]:
        """Delete namespaces and temp roots of labs whose process is gone; returns them."""
        removed = []
        for ns in netns.names():
            m = NS_PATTERN.match(ns)
            if m is None or netns.pid_alive(int(m.group(1))):
                continue
            with contextlib.suppress(RuntimeError):
                netns.kill_processes_in(ns)
                netns.ip("netns", "del", ns)
                removed.append(ns)
        for path in Path("/tmp").iterdir():
            m = ROOT_PATTERN.match(path.name)
            if m is not None and path.is_dir() and not netns.pid_alive(int(m.group(1))):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(str(path))
        return removed

    def _add_namespace(self, host: str) -> str:
        ns = self.ns(host)
        netns.ip("netns", "add", ns)
        self._namespaces.append(ns)
        netns.ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _build_network(self) -> None:
        sw = self._add_namespace(SWITCH)
        netns.ip("-n", sw, "link", "add", "br0", "type", "bridge")
        netns.ip("-n", sw, "link", "set", "br0", "up")
        for host in (*self.nodes, self.client):
            ns = self._add_namespace(host.name)
            port = self._port(host.name)
            # Created straight into the two namespaces: nothing appears where we run.
            netns.ip(*f"link add eth0 netns {ns} type veth peer name {port} netns {sw}".split())
            netns.ip("-n", sw, "link", "set", port, "master", "br0")
            netns.ip("-n", sw, "link", "set", port, "up")
            netns.ip("-n", ns, "addr", "add", f"{host.ipv4}/24", "dev", "eth0")
            # nodad: duplicate address detection would leave the address unusable ~1.5 s.
            netns.ip("-n", ns, "addr", "add", f"{host.ipv6}/64", "dev", "eth0", "nodad")
            netns.ip("-n", ns, "link", "set", "eth0", "up")

    @staticmethod
    def _port(name: str) -> str:
        port = f"p-{name}"
        if len(port) > 15:  # IFNAMSIZ - 1
            raise ValueError(f"host name {name!r} is too long for an interface name")
        return port

    def _prepare_node(self, node: LabNode) -> None:
        assert self.ca is not None
        root = self.node_root(node.name)
        zones = root / "zones"
        for d in (zones, root / "state", root / "gemini", root / "pki"):
            d.mkdir(parents=True, exist_ok=True)
        for zone in self.zones:
            self.zone_path(node.name, zone).write_text(self.zone_text(zone))
        names = [node.fqdn, *self.zones, *(f"*.{z}" for z in self.zones)]
        issue(self.ca, root / "pki", "web", names, [node.ipv4, node.ipv6])
        issue(self.ca, root / "pki", "gemini", [node.fqdn])
        (root / "gemini" / "index.gmi").write_text(f"Welcome to {node.fqdn}!\n")
        (root / "molly.conf").write_text(
            molly_config(node, root, CertPair(root / "pki/gemini.crt", root / "pki/gemini.key"))
        )
        listen = [(a, DNS_PORT) for a in ("127.0.0.1", "::1", node.ipv4, node.ipv6)]
        nsd = NsdInstance(
            zones,
            listen,
            {z: f"{z}.zone" for z in self.zones},
            command_prefix=self._in(node.name),
            ready=functools.partial(self._serves, node.name),
        )
        self._nsd[node.name] = nsd
        self.config_path(node.name).write_text(
            config_text(
                node, root, self.nodes, self.ca, nsd.control_argv, self.health, self.rotation
            )
        )

    def zone_text(self, zone: str, serial: int = SERIAL) -> str:
        a, b = self.nodes
        return self.template.format(
            zone=zone, serial=serial, a4=a.ipv4, a6=a.ipv6, b4=b.ipv4, b6=b.ipv6
        )

    # -- processes -----------------------------------------------------------------------

    def _in(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host)]

    @staticmethod
    def _env() -> dict[str, str]:
        # The same kissha and lab as ours, whether they are installed in the venv or not.
        src = str(Path(kissha.__file__).resolve().parent.parent)
        here = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        paths = [src, here] + ([path] if path else [])
        return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}

    def _popen(self, name: str, argv: Sequence[str], logfile: Path) -> _Started:
        out: IO[bytes]
        with logfile.open("ab") as out:
            process = subprocess.Popen(
                [*self._in(name), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                # Own process group: teardown signals the group, reaching any children.
                start_new_session=True,
            )
        self._pids.add(process.pid)
        return _Started(process, logfile)

    def _spawn(self, name: str, service: Service, argv: Sequence[str]) -> None:
        logfile = self.node_root(name) / f"{service}.out"
        self._procs[(name, service)] = self._popen(name, argv, logfile)

    def _spawn_web(self, node: LabNode) -> None:
        root = self.node_root(node.name)
        ready = root / "web.ready"
        ready.unlink(missing_ok=True)
        self._spawn(
            node.name,
            "web",
            [
                sys.executable,
                "-m",
                "lab.webserver",
                "--listen",
                f"{node.ipv4}:{HTTPS_PORT}",
                "--listen",
                f"[{node.ipv6}]:{HTTPS_PORT}",
                "--tls-cert",
                str(root / "pki/web.crt"),
                "--tls-key",
                str(root / "pki/web.key"),
                "--fqdn",
                node.fqdn,
                "--ready-file",
                str(ready),
            ],
        )

    def _await_web(self, node: LabNode) -> None:
        ready = self.node_root(node.name) / "web.ready"
        self._await(node.name, "web", ready.exists)

    def _spawn_gemini(self, node: LabNode) -> None:
        self._spawn(
            node.name,
            "gemini",
            ["molly-brown", "-c", str(self.node_root(node.name) / "molly.conf")],
        )

    def _await_gemini(self, node: LabNode) -> None:
        self._await(node.name, "gemini", functools.partial(self._gemini_listens, node.name))

    def _gemini_listens(self, name: str) -> bool:
        # One helper process that retries for a while: cheaper than one process per try.
        port, wait = str(GEMINI_PORT), str(START_TIMEOUT)
        done = self._netclient(name, "connect", "127.0.0.1", port, "--wait", wait)
        return done.returncode == 0

    def _await(self, name: str, service: Service, ready: Callable[[], bool]) -> None:
        started = self._procs[(name, service)]
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if started.process.poll() is not None or time.monotonic() > deadline:
                tail = started.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{service} on {name} did not start:\n{tail}")
            time.sleep(0.02)

    def _start_nsd(self, node: LabNode) -> None:
        nsd = self._nsd[node.name]
        nsd.start()
        if nsd.pid is not None:
            self._pids.add(nsd.pid)

    def _stop_service(self, name: str, service: Service) -> None:
        started = self._procs.pop((name, service), None)
        if started is not None:
            netns.stop_process(started.process)

    def _serves(self, name: str, zone: str, address: str, port: int) -> bool:
        # nsd's readiness, asked from inside the node: our own namespace cannot reach it.
        answers = self._dig(name, address, zone, "SOA", tries=1, port=port)
        # One SOA (7 fields); errors come back as one word such as {"REFUSED"}.
        return len(answers) == 1 and len(next(iter(answers)).split()) == 7

    def running(self, name: str, service: Service) -> bool:
        if service == "nsd":
            return self._nsd[self.node(name).name].running
        started = self._procs.get((self.node(name).name, service))
        return started is not None and started.process.poll() is None

    # -- running things inside the lab ---------------------------------------------------

    def exec(
        self, host: str, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside host's namespace ("client", a node, or "sw"); never raises on exit."""
        return subprocess.run(
            [*self._in(host), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self._env(),
        )

    def kissha(
        self, name: str, *args: str, now: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kissha -c <node's config> args`` inside the node's namespace."""
        argv = [sys.executable, "-m", "kissha", "-c", str(self.config_path(name)), *args]
        if now is not None:
            argv += ["--now", now]
        return self.exec(name, argv, timeout=timeout)

    # -- the operator's mail server and webhook receiver, on the client ------------------

    def start_sink(self, smtp_port: int = SINK_SMTP_PORT, http_port: int = SINK_HTTP_PORT) -> Path:
        """Run lab.sink (aiosmtpd and a webhook receiver) in the client's namespace,
        off both nodes as an operator's mail server would be; stopped at teardown.
        Returns the file it appends every message to (one JSON object a line)."""
        out, ready = self.root / "inbox.jsonl", self.root / "sink.ready"
        client = self.address(self.client.name, "ipv4")
        argv = [sys.executable, "-m", "lab.sink", "--out", str(out)]
        argv += ["--smtp", f"{client}:{smtp_port}", "--http", f"{client}:{http_port}"]
        argv += ["--ready-file", str(ready)]
        started = self._popen(self.client.name, argv, self.root / "sink.log")
        self._procs[(self.client.name, "sink")] = started
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if started.process.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "sink.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the sink did not start:\n{log}")
            time.sleep(0.05)
        return out

    def notify_to_sink(
        self,
        name: str,
        extra: str = "",
        smtp_port: int = SINK_SMTP_PORT,
        http_port: int = SINK_HTTP_PORT,
    ) -> None:
        """Give node name's config a [notify] table: one mail (plain SMTP) and one webhook
        channel, both to the client's sink; ``extra`` adds [notify] keys. Replaces an
        earlier [notify]."""
        client = self.address(self.client.name, "ipv4")
        path = self.config_path(name)
        text = path.read_text().split("\n[notify]\n")[0]
        path.write_text(
            text
            + f'\n[notify]\nnode = "{self.node(name).name}"\ntimeout = 5\n{extra}\n'
            + f'[[notify.mail]]\nto = "ops@example.org"\nsmtp = "{client}:{smtp_port}"\n'
            + "starttls = false\n\n"
            + f'[[notify.webhook]]\nurl = "http://{client}:{http_port}/kissha"\n'
        )

    # -- kissha daemon on a node ---------------------------------------------------------

    def start_daemon(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``kissha -c <node's config> daemon args`` in the background inside the
        node's namespace. Its log (stderr) goes to ``daemon.log`` in the node's directory;
        close() stops it like the servers (SIGTERM, then SIGKILL)."""
        node = self.node(name).name
        if node in self._daemons:
            raise RuntimeError(f"a daemon already runs on {node}")
        argv = [sys.executable, "-m", "kissha", "-c", str(self.config_path(node)), "daemon"]
        # `ip netns exec` execs the command: the PID is the daemon's own, for signals.
        started = self._popen(node, [*argv, *args], self.daemon_log_path(node))
        self._daemons[node] = started
        return started.process

    def daemon(self, name: str) -> subprocess.Popen[bytes]:
        """The daemon started on node name (running or not)."""
        return self._daemons[self.node(name).name].process

    def daemon_log_path(self, name: str) -> Path:
        return self.node_root(name) / "daemon.log"

    def daemon_log(self, name: str) -> str:
        path = self.daemon_log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_daemon(self, name: str, timeout: float = netns.STOP_TIMEOUT) -> int | None:
        """SIGTERM the daemon and wait up to timeout for the round in progress to finish;
        SIGKILL if it has not. Its exit code, or None if it had to be killed."""
        started = self._daemons.pop(self.node(name).name)
        process = started.process
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # the daemon alone, as a service manager does
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        code = process.poll()
        netns.stop_process(process)  # SIGKILL if still there; sweeps its process group
        return code

    def _dig(
        self, host: str, server: str, name: str, rdtype: str, tries: int, port: int = DNS_PORT
    ) -> set[str]:
        argv = ["dig", "+time=1", f"+tries={tries}", "+noall", "+comments", "+answer", "-p"]
        argv += [str(port), f"@{server}", name, rdtype]
        done = self.exec(host, argv, timeout=5 + 2 * tries)
        return parse_dig(done.returncode, done.stdout + done.stderr, rdtype)

    def dig(
        self, server: str, name: str, rdtype: str, family: Family = "ipv4", tries: int = 2
    ) -> set[str]:
        """What node server answers the client: rdata texts, or {"TIMEOUT"}, {"SERVFAIL"}..."""
        return self._dig(self.client.name, self.address(server, family), name, rdtype, tries)

    def all_point_at(
        self, node: str, name: str = "www.example.org", servers: Sequence[str] | None = None
    ) -> bool:
        """Whether every node's nameserver (or those of ``servers``) answers ``name`` with
        ``node``'s A and AAAA, asked from the client over IPv4 and over IPv6."""
        want = ({self.address(node, "ipv4")}, {self.address(node, "ipv6")})
        return all(
            (self.dig(s, name, "A", f, tries=1), self.dig(s, name, "AAAA", f, tries=1)) == want
            for s in (servers or [n.name for n in self.nodes])
            for f in ("ipv4", "ipv6")
        )

    def fetch_https(self, from_host: str, node: str, family: Family = "ipv4") -> str:
        """GET https://<fqdn>/index.txt from from_host: the body, or "error: <curl's message>"."""
        assert self.ca is not None
        fqdn = self.node(node).fqdn
        address = self.address(node, family)
        pinned = f"[{address}]" if family == "ipv6" else address
        done = self.exec(
            from_host,
            [
                "curl",
                "--silent",
                "--show-error",
                "--fail",
                "--max-time",
                "3",
                "--cacert",
                str(self.ca.cert),
                "--resolve",
                f"{fqdn}:{HTTPS_PORT}:{pinned}",
                f"https://{fqdn}/index.txt",
            ],
        )
        return done.stdout if done.returncode == 0 else f"error: {done.stderr.strip()}"

    def _netclient(self, host: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.exec(host, [sys.executable, "-m", "lab.netclient", *args])

    def fetch_gemini(
        self, from_host: str, node: str, family: Family = "ipv4", path: str = "/"
    ) -> str:
        """gemini://<fqdn><path> from from_host: the whole response, or "error: ..."."""
        assert self.ca is not None
        done = self._netclient(
            from_host,
            "gemini",
            self.address(node, family),
            self.node(node).fqdn,
            "--path",
            path,
            "--ca-file",
            str(self.ca.cert),
        )
        return done.stdout if done.returncode == 0 else f"error: {done.stdout.strip()}"

    def connect(
        self, from_host: str, node: str, port: int, family: Family = "ipv4", timeout: float = 1
    ) -> str:
        """One TCP connect from from_host to a node: "ok" or the error, e.g. "...refused"."""
        done = self._netclient(
            from_host, "connect", self.address(node, family), str(port), "--timeout", str(timeout)
        )
        return done.stdout.strip() or done.stderr.strip()

    # -- faults, each with its undo ------------------------------------------------------

    def pull_cable(self, name: str) -> None:
        netns.ip("-n", self.ns(SWITCH), "link", "set", self._port(self.node(name).name), "down")

    def plug_cable(self, name: str) -> None:
        """Plug the cable back and wait until both ends say so (bounded).

        As on a real network, a neighbour that gave up on the node while it was away (a
        FAILED ARP entry) drops the first packet to it for about a second: poll, with a
        bound, rather than expecting the very first query to get through.
        """
        node = self.node(name).name
        netns.ip("-n", self.ns(SWITCH), "link", "set", self._port(node), "up")
        # The kernel applies carrier changes a moment later (linkwatch); packets sent
        # before that are dropped, so a query right after plugging in would time out.
        deadline = time.monotonic() + START_TIMEOUT
        for ns, ifname in ((self.ns(SWITCH), self._port(node)), (self.ns(node), "eth0")):
            while "state UP" not in netns.ip("-n", ns, "-o", "link", "show", ifname):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ifname} in {ns} did not come up")
                time.sleep(0.01)

    def stop(self, name: str, service: Service) -> None:
        node = self.node(name)
        if service == "nsd":
            self._nsd[node.name].stop()
        elif service in ("web", "gemini"):
            self._stop_service(node.name, service)
        else:
            raise ValueError(f"no such service: {service!r}; one of {', '.join(SERVICES)}")

    def start(self, name: str, service: Service) -> None:
        """Start a stopped service again; a running one is left alone."""
        node = self.node(name)
        if self.running(name, service):
            return
        if service == "nsd":
            self._start_nsd(node)
        elif service == "web":
            self._spawn_web(node)
            self._await_web(node)
        elif service == "gemini":
            self._spawn_gemini(node)
            self._await_gemini(node)
        else:
            raise ValueError(f"no such service: {service!r}; one of {', '.join(SERVICES)}")

    def _nft(self, name: str, script: str) -> None:
        done = subprocess.run(
            [*self._in(self.node(name).name), "nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft on {name} failed: {done.stderr.strip()}\n{script}")

    def break_family(self, name: str, family: Family) -> None:
        """Drop all of one family in and out of the node, loopback excepted."""
        self._nft(name, faults.break_family(family))

    def repair_family(self, name: str, family: Family) -> None:
        self._nft(name, faults.break_family_table(family).remove())

    def packet_loss(self, name: str, percent: int) -> None:
        """Drop about percent % of what reaches the node from the network."""
        self._nft(name, faults.packet_loss(percent))

    def no_packet_loss(self, name: str) -> None:
        self._nft(name, faults.LOSS_TABLE.remove())

    def cut_link(self, a: str, b: str) -> None:
        """a and b no longer reach each other; the client still reaches both."""
        for here, there in ((a, b), (b, a)):
            peer = self.node(there)
            self._nft(here, faults.cut_link(peer.name, [peer.ipv4, peer.ipv6]))

    def restore_link(self, a: str, b: str) -> None:
        for here, there in ((a, b), (b, a)):
            self._nft(here, faults.cut_table(self.node(there).name).remove())

    def cut_ports(self, a: str, b: str, ports: Sequence[int]) -> None:
        """a and b no longer reach each other's TCP ports (e.g. the web); DNS and the
        client still get through: each node sees the other down, both can be asked."""
        for here, there in ((a, b), (b, a)):
            peer = self.node(there)
            self._nft(here, faults.cut_ports(peer.name, [peer.ipv4, peer.ipv6], ports))

    def restore_ports(self, a: str, b: str) -> None:
        for here, there in ((a, b), (b, a)):
            self._nft(here, faults.ports_table(self.node(there).name).remove())
