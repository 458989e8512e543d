"""Health probes: every node, every address family, concurrently, with hard time limits.

Each probe connects to the node's configured address (never through DNS, which kissha
itself rewrites); HTTP(S) and Gemini send the node's FQDN as Host, URL host and SNI.
One module per probe type (http, gemini, tcp, dns, smtp); base.py holds what they share.
Threads, not asyncio: the probes are few and asyncio alone costs ~50 ms at start-up,
every minute, on small VMs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

from kissha.config import HealthConfig
from kissha.core.model import Family, Node, ProbeResult, ProbeSpec
from kissha.probes import dns, gemini, http, smtp, tcp
from kissha.probes.base import Outcome, ProbeFailed, ProbeFn, tls_context, unverified_context
from kissha.probes.tofu import ProbeContext, cert_warning

PROBES: dict[str, ProbeFn] = {
    "https": http.https,
    "http": http.http,
    "gemini": gemini.gemini,
    "tcp": tcp.tcp,
    "dns": dns.dns,
    "smtp": smtp.smtp,
}


# --- rounds ---------------------------------------------------------------------------


def stagger(health: HealthConfig) -> float:
    """How long an attempt runs alone before the next one starts beside it."""
    return health.timeout / 4


def round_limit(health: HealthConfig) -> float:
    """The longest a probe with all its attempts can take (a black hole): the last
    attempt starts ``retries`` staggers in and runs for one timeout."""
    return health.timeout + health.retries * stagger(health)


def _attempt(
    fn: ProbeFn,
    node: Node,
    family: Family,
    spec: ProbeSpec,
    health: HealthConfig,
    context: ProbeContext,
) -> tuple[Outcome | None, str, float]:
    """One attempt: (outcome or None, the failure in words, latency in ms)."""
    started = time.monotonic()
    try:
        out = fn(node, family, spec, health, context)
    except ProbeFailed as exc:
        return None, str(exc), 0.0
    except Exception as exc:  # a probe bug must fail the probe, not the run
        return None, f"probe error: {type(exc).__name__}: {exc}", 0.0
    return out, "", (time.monotonic() - started) * 1000


def probe_once(
    node: Node,
    family: Family,
    spec: ProbeSpec,
    health: HealthConfig,
    context: ProbeContext | None = None,
) -> ProbeResult:
    """Run one probe with its retries; never raises.

    Attempts overlap: the next one starts when the one before it fails, or a stagger
    (a quarter of the timeout) after it started, whichever comes first, and the first
    that passes wins. A refused connection is retried at once, as before; a black hole
    costs one timeout plus the staggers, not (retries + 1) timeouts, which is what let
    a pulled cable take 15 s to fail over in the daemon. Under loss, the attempts
    still send as many SYNs as sequential ones did, in less time.
    """
    fn = PROBES[spec.kind]
    context = context if context is not None else ProbeContext()
    address = node.address(family) or ""
    total = health.retries + 1
    done: queue.Queue[tuple[int, Outcome | None, str, float]] = queue.Queue()

    def work(k: int) -> None:
        done.put((k, *_attempt(fn, node, family, spec, health, context)))

    started, finished = 0, 0
    failures: dict[int, str] = {}
    next_start = time.monotonic()
    # Sockets carry deadlines, so attempts end in time; this bounds a probe bug too.
    hard_end = next_start + round_limit(health) + 1.0
    while True:
        if started < total and time.monotonic() >= next_start:
            threading.Thread(target=work, args=(started,), daemon=True).start()
            started += 1
            next_start = time.monotonic() + stagger(health)
        if finished == started and started == total:
            break
        until = hard_end if started == total else min(next_start, hard_end)
        try:
            k, out, detail, latency = done.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            if time.monotonic() >= hard_end:
                break
            continue
        finished += 1
        if out is None:
            failures[k] = detail
            next_start = time.monotonic()  # failed fast: the next attempt starts now
            continue
        expiry = cert_warning(out.cert_not_after, time.time(), health.cert_warn_days)
        warning = "; ".join(w for w in (out.warning, expiry) if w) or None
        return ProbeResult(
            node.name,
            spec.name,
            family,
            address,
            True,
            out.detail,
            spec.required,
            round(latency, 1),
            started,
            out.cert_not_after,
            warning,
        )
    # The last attempt's reason.
    detail = (
        failures[max(failures)] if failures else f"timeout after {health.timeout:g} s (hard limit)"
    )
    return ProbeResult(
        node.name, spec.name, family, address, False, detail, spec.required, None, started
    )


def run_round(
    nodes: Sequence[Node], health: HealthConfig, context: ProbeContext | None = None
) -> list[ProbeResult]:
    """Probe every node over each of its families with each of its probes, all at once.

    A round costs about one timeout per attempt, not the sum; a worker that overstays
    its hard limit (it cannot, sockets carry deadlines, but still) is reported as a
    timeout and abandoned as a daemon thread. ``context`` carries the TOFU fingerprints
    (without one, they are learned for this round only).
    """
    context = context if context is not None else ProbeContext()
    tasks = [(n, f, s) for n in nodes for f in n.families for s in health.probes if n.runs(s.name)]
    for spec in health.probes:
        # Build contexts once, before the threads race for them.
        if spec.kind == "https" or (spec.kind == "gemini" and spec.tls == "ca"):
            tls_context(spec.ca_file)
        elif spec.kind == "gemini":
            unverified_context()
    results: list[ProbeResult | None] = [None] * len(tasks)
    done = threading.Semaphore(0)

    def work(i: int) -> None:
        try:
            results[i] = probe_once(*tasks[i], health, context)
        finally:
            done.release()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(tasks))]
    for t in threads:
        t.start()
    limit = time.monotonic() + round_limit(health) + 1.0
    for _ in tasks:
        if not done.acquire(timeout=max(0.0, limit - time.monotonic())):
            break
    out: list[ProbeResult] = []
    for i, (node, family, spec) in enumerate(tasks):
        r = results[i]
        if r is None:
            r = ProbeResult(
                node.name,
                spec.name,
                family,
                node.address(family) or "",
                False,
                f"timeout after {health.timeout:g} s (hard limit)",
                spec.required,
            )
        out.append(r)
    return out
