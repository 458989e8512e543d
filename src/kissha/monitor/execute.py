"""One attempt of one check (I/O): plugins, kissha's probes, TLS certificates, site
names over HTTPS, nameservers, TCP, and local disk, load and swap. Never raises: every
failure is an Outcome with its reason in words."""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.monitor import plugin
from kissha.monitor.model import CRITICAL, OK, UNKNOWN, WARNING, CheckSpec, Outcome, Perf

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.core.model import Roles

DAY = 86400.0
MAX_HEAD = 16384


@dataclass
class Context:
    """What the checks of one run share: the config, the run's time (certificates are
    judged against it, so --now drills work), the roles from the failover state."""

    config: Config
    now: float
    roles: Roles | None = None
    plugins_dir: Path | None = None
    _questions: Any = field(default=None, repr=False)

    def plugin_path(self, name: str) -> str | None:
        """A monitoring plugin by name, if installed in plugins_dir and executable."""
        if self.plugins_dir is None:
            return None
        path = self.plugins_dir / name
        return str(path) if os.access(path, os.X_OK) else None

    def questions(self) -> Any:
        if self._questions is None:
            from kissha.observe.asking import questions

            self._questions = questions(self.config)[0]
        return self._questions


def attempt(spec: CheckSpec, ctx: Context) -> Outcome:
    try:
        return _KINDS[spec.kind](spec, ctx)
    except Exception as exc:  # a bug in a check must fail that check, not the run
        return Outcome(UNKNOWN, f"check error: {type(exc).__name__}: {exc}")


# -- plugins and pings -------------------------------------------------------------------


def _plugin(spec: CheckSpec, ctx: Context) -> Outcome:
    return plugin.run(spec.argv, spec.timeout)


def ping_argv(spec: CheckSpec, ctx: Context) -> tuple[str, ...] | None:
    path = ctx.plugin_path("check_ping")
    if path is None or spec.address is None:
        return None
    flag = "-6" if spec.family == "ipv6" else "-4"
    seconds = str(max(1, int(spec.timeout)))
    return (
        path,
        flag,
        "-H",
        spec.address,
        "-w",
        "200,20%",
        "-c",
        "500,60%",
        "-p",
        "3",
        "-t",
        seconds,
    )


def _ping(spec: CheckSpec, ctx: Context) -> Outcome:
    argv = ping_argv(spec, ctx)
    if argv is not None:
        return plugin.run(argv, spec.timeout + 1)
    return builtin_ping(spec)


def builtin_ping(spec: CheckSpec) -> Outcome:
    """Without check_ping: one ICMP echo through an unprivileged ICMP socket when the
    kernel allows it, else a TCP connect to port 443 (a refusal proves the host is there)."""
    assert spec.address is not None
    family = socket.AF_INET6 if spec.family == "ipv6" else socket.AF_INET
    started = time.monotonic()
    try:
        proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    except OSError:
        return _reach(spec, family, started)
    with sock:
        sock.settimeout(spec.timeout)
        kind = 128 if family == socket.AF_INET6 else 8
        packet = bytes([kind, 0, 0, 0, 0, 0, 0, 1]) + b"kissha"
        try:
            sock.sendto(packet, (spec.address, 0))
            sock.recv(1024)
        except TimeoutError:
            return Outcome(CRITICAL, f"PING CRITICAL - no answer within {spec.timeout:g} s")
        except OSError as exc:
            return Outcome(CRITICAL, f"PING CRITICAL - {exc.strerror or exc}")
    rtt = (time.monotonic() - started) * 1000
    return Outcome(OK, f"PING OK - RTA = {rtt:.2f} ms", (Perf("rta", round(rtt, 3), "ms"),))


def _reach(spec: CheckSpec, family: int, started: float) -> Outcome:
    assert spec.address is not None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(spec.timeout)
    try:
        sock.connect((spec.address, 443))
    except ConnectionRefusedError:
        pass  # something answered: the host is there
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return Outcome(CRITICAL, f"REACH CRITICAL - {why} (TCP, no ICMP socket allowed)")
    finally:
        sock.close()
    rtt = (time.monotonic() - started) * 1000
    return Outcome(OK, f"REACH OK - {rtt:.2f} ms (TCP)", (Perf("rta", round(rtt, 3), "ms"),))


# -- kissha's probes, certificates, sites ------------------------------------------------


def days_state(not_after: float, now: float, spec: CheckSpec) -> tuple[int, str, Perf]:
    days = (not_after - now) / DAY
    perf = Perf("cert_days", round(days, 1), "", str(spec.warn_days), str(spec.crit_days))
    when = time.strftime("%Y-%m-%d", time.gmtime(not_after))
    if days <= 0:
        return CRITICAL, f"certificate expired on {when}", perf
    text = f"certificate valid for {days:.0f} days (until {when})"
    if days <= spec.crit_days:
        return CRITICAL, text, perf
    if days <= spec.warn_days:
        return WARNING, text, perf
    return OK, text, perf


def _probe(spec: CheckSpec, ctx: Context) -> Outcome:
    from kissha.probes import probe_once
    from kissha.probes.tofu import ProbeContext

    config = ctx.config
    probe = next(p for p in config.health.probes if p.name == spec.probe)
    node = config.node(spec.node or "")
    assert spec.family is not None
    # One attempt: the monitor's retries are the check's own.
    health = replace(config.health, timeout=spec.timeout, retries=0, cert_warn_days=0)
    r = probe_once(node, spec.family, probe, health, ProbeContext.load(config.state_dir, True))
    perf: list[Perf] = []
    if r.latency_ms is not None:
        perf.append(Perf("time", round(r.latency_ms / 1000, 4), "s"))
    if not r.ok:
        return Outcome(CRITICAL, f"{probe.kind.upper()} CRITICAL - {r.detail}", tuple(perf))
    state, text = OK, f"{probe.kind.upper()} OK - {r.detail}"
    if r.cert_not_after is not None:
        state, cert, p = days_state(r.cert_not_after, ctx.now, spec)
        perf.append(p)
        text += f"; {cert}"
        if state != OK:
            text = text.replace(" OK - ", f" {('OK', 'WARNING', 'CRITICAL')[state]} - ", 1)
    return Outcome(state, text, tuple(perf))


def ca_file(ctx: Context) -> str | None:
    """[monitor] ca_file, else the https probe's, else the system's store."""
    if ctx.config.monitor.ca_file:
        return ctx.config.monitor.ca_file
    for p in ctx.config.health.probes:
        if p.kind == "https" and p.ca_file:
            return p.ca_file
    return None


def _connect_tls(spec: CheckSpec, ctx: Context, port: int) -> tuple[ssl.SSLSocket, socket.socket]:
    from kissha.probes.base import tls_context

    assert spec.address is not None
    family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(spec.timeout)
    try:
        sock.connect((spec.address, port))
        tls = tls_context(ca_file(ctx)).wrap_socket(sock, server_hostname=spec.name)
    except BaseException:
        sock.close()
        raise
    return tls, sock


def _failure(exc: BaseException, stage: str, timeout: float) -> str:
    from kissha.probes.base import failure

    return failure(exc, stage, timeout)


def _cert(spec: CheckSpec, ctx: Context) -> Outcome:
    started = time.monotonic()
    try:
        tls, sock = _connect_tls(spec, ctx, spec.port or 443)
    except (OSError, ValueError) as exc:
        return Outcome(
            CRITICAL, f"CERT CRITICAL - {_failure(exc, 'during the TLS handshake', spec.timeout)}"
        )
    with sock, tls:
        cert = tls.getpeercert()
    elapsed = time.monotonic() - started
    if not cert or "notAfter" not in cert:
        return Outcome(UNKNOWN, "CERT UNKNOWN - no certificate details")
    not_after = float(ssl.cert_time_to_seconds(str(cert["notAfter"])))
    state, text, perf = days_state(not_after, ctx.now, spec)
    word = ("OK", "WARNING", "CRITICAL")[state]
    return Outcome(
        state, f"CERT {word} - {spec.name}: {text}", (perf, Perf("time", round(elapsed, 4), "s"))
    )


def _http(spec: CheckSpec, ctx: Context) -> Outcome:
    """GET the path with the site's name as Host and SNI, from the node's address:
    2xx and 3xx OK, 4xx WARNING, 5xx and no answer CRITICAL (check_http's rule)."""
    started = time.monotonic()
    stage = "while connecting"
    try:
        tls, sock = _connect_tls(spec, ctx, spec.port or 443)
        with sock, tls:
            stage = "waiting for the response"
            tls.sendall(
                f"GET {spec.path} HTTP/1.0\r\nHost: {spec.name}\r\nUser-Agent: kissha-monitor\r\n"
                "Connection: close\r\n\r\n".encode("ascii")
            )
            head = b""
            while b"\r\n" not in head and len(head) < MAX_HEAD:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
    except (OSError, ValueError) as exc:
        return Outcome(CRITICAL, f"HTTP CRITICAL - {_failure(exc, stage, spec.timeout)}")
    elapsed = time.monotonic() - started
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Outcome(CRITICAL, "HTTP CRITICAL - not an HTTP response")
    status = int(parts[1])
    state = OK if status < 400 else WARNING if status < 500 else CRITICAL
    word = ("OK", "WARNING", "CRITICAL")[state]
    reason = " ".join(parts[2:])
    return Outcome(
        state,
        f"HTTP {word} - {spec.name}{spec.path}: {status} {reason}".rstrip()
        + f" in {elapsed:.3f} s",
        (Perf("time", round(elapsed, 4), "s"),),
    )


def _tcp(spec: CheckSpec, ctx: Context) -> Outcome:
    assert spec.address is not None
    started = time.monotonic()
    family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(spec.timeout)
    try:
        sock.connect((spec.address, spec.port))
    except OSError as exc:
        return Outcome(
            CRITICAL,
            f"TCP CRITICAL - port {spec.port}: {_failure(exc, 'while connecting', spec.timeout)}",
        )
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    return Outcome(
        OK,
        f"TCP OK - port {spec.port} in {elapsed * 1000:.1f} ms",
        (Perf("time", round(elapsed, 4), "s"),),
    )


def _nameserver(spec: CheckSpec, ctx: Context) -> Outcome:
    """What this nameserver answers, judged as kissha status does: unreachable or naming
    no master is CRITICAL, naming another master than the state's is CRITICAL (split
    brain in the making), unknown addresses and per-name errors are WARNING."""
    from kissha.observe.asking import ask
    from kissha.observe.verdict import normal_nodes, view

    assert spec.address is not None and spec.family is not None and spec.node is not None
    nodes = normal_nodes(ctx.config.nodes)
    node = next(n for n in nodes if n.name == spec.node)
    replies = ask(spec.address, spec.family, spec.port or 53, ctx.questions(), spec.timeout)
    v = view(node, spec.family, replies, nodes)
    if v.error is not None:
        return Outcome(CRITICAL, f"DNS CRITICAL - unreachable: {v.error}")
    if not v.master:
        return Outcome(CRITICAL, "DNS CRITICAL - names no master" + _first(v.problems))
    master = "+".join(v.master)
    serial = next(iter(sorted(set(v.serials.values()))), "-")
    text = (
        f"master names -> {master}, standby names -> {'+'.join(v.standby) or '-'}, serial {serial}"
    )
    perf = (Perf("zones", float(len(v.serials))),)
    if ctx.roles is not None and v.master != (ctx.roles.master,):
        return Outcome(
            CRITICAL, f"DNS CRITICAL - {text}; the state says master {ctx.roles.master}", perf
        )
    if v.problems:
        return Outcome(WARNING, f"DNS WARNING - {text}" + _first(v.problems), perf)
    return Outcome(OK, f"DNS OK - {text}", perf)


def _first(problems: tuple[str, ...]) -> str:
    if not problems:
        return ""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"; {problems[0]}{more}"


# -- local resources -----------------------------------------------------------------------

DISK_WARN, DISK_CRIT = 10.0, 5.0  # % free
LOAD_WARN, LOAD_CRIT = (3.0, 2.5, 2.0), (6.0, 5.0, 4.0)  # per CPU, 1/5/15 minutes
SWAP_WARN, SWAP_CRIT = 50.0, 25.0  # % free


def local_argv(spec: CheckSpec, ctx: Context) -> tuple[str, ...] | None:
    """The monitoring plugin for disk, load or swap with the built-in's thresholds."""
    name = {"disk": "check_disk", "load": "check_load", "swap": "check_swap"}[spec.kind]
    path = ctx.plugin_path(name)
    if path is None:
        return None
    if spec.kind == "disk":
        return (path, "-w", f"{DISK_WARN:g}%", "-c", f"{DISK_CRIT:g}%", "-p", spec.path)
    if spec.kind == "load":
        w, c = (",".join(f"{x:g}" for x in t) for t in (LOAD_WARN, LOAD_CRIT))
        return (path, "-r", "-w", w, "-c", c)
    return (path, "-w", f"{SWAP_WARN:g}%", "-c", f"{SWAP_CRIT:g}%", "-n", "ok")


def _local(spec: CheckSpec, ctx: Context) -> Outcome:
    argv = local_argv(spec, ctx)
    if argv is not None:
        return plugin.run(argv, spec.timeout)
    return {"disk": builtin_disk, "load": builtin_load, "swap": builtin_swap}[spec.kind](spec)


def builtin_disk(spec: CheckSpec) -> Outcome:
    st = os.statvfs(spec.path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    pct = 100.0 * free / total if total else 100.0
    state = CRITICAL if pct < DISK_CRIT else WARNING if pct < DISK_WARN else OK
    word = ("OK", "WARNING", "CRITICAL")[state]
    used = total - st.f_bfree * st.f_frsize
    return Outcome(
        state,
        f"DISK {word} - free space: {spec.path} {free // 2**20} MiB ({pct:.0f}%)",
        (Perf(spec.path, float(used), "B", min=0.0, max=float(total)),),
    )


def builtin_load(spec: CheckSpec) -> Outcome:
    loads = os.getloadavg()
    cpus = os.cpu_count() or 1
    scaled = [x / cpus for x in loads]
    state = OK
    if any(s > c for s, c in zip(scaled, LOAD_CRIT, strict=True)):
        state = CRITICAL
    elif any(s > w for s, w in zip(scaled, LOAD_WARN, strict=True)):
        state = WARNING
    word = ("OK", "WARNING", "CRITICAL")[state]
    perf = tuple(Perf(f"load{m}", round(x, 3)) for m, x in zip((1, 5, 15), loads, strict=True))
    text = ", ".join(f"{x:.2f}" for x in scaled)
    return Outcome(state, f"LOAD {word} - scaled load average: {text}", perf)


def builtin_swap(spec: CheckSpec) -> Outcome:
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return Outcome(UNKNOWN, "SWAP UNKNOWN - no /proc/meminfo here (install check_swap)")
    total, free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
    if total == 0:
        return Outcome(OK, "SWAP OK - no swap configured", (Perf("swap", 0.0, "B"),))
    pct = 100.0 * free / total
    state = CRITICAL if pct < SWAP_CRIT else WARNING if pct < SWAP_WARN else OK
    word = ("OK", "WARNING", "CRITICAL")[state]
    return Outcome(
        state,
        f"SWAP {word} - {pct:.0f}% free ({free // 2**20} MiB out of {total // 2**20} MiB)",
        (Perf("swap", float(free), "B", min=0.0, max=float(total)),),
    )


_KINDS = {
    "plugin": _plugin,
    "ping": _ping,
    "probe": _probe,
    "cert": _cert,
    "http": _http,
    "tcp": _tcp,
    "nameserver": _nameserver,
    "disk": _local,
    "load": _local,
    "swap": _local,
}
