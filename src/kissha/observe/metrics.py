"""Prometheus metrics: a run report and the state rendered in the text exposition format."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from kissha.core.report import RunReport
    from kissha.engine.state import State

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


# Each kind of change on its own: an alert on failovers must not fire every week.
_COUNTERS: tuple[tuple[str, str, Callable[[State], int]], ...] = (
    (
        "kissha_failovers_total",
        "Health failovers applied by this node's kissha (the master was down) since its "
        "state began; failbacks and rotations are counted apart.",
        lambda s: s.failovers,
    ),
    (
        "kissha_failbacks_total",
        "Failbacks applied: a node passed its probes again and leads as preferred.",
        lambda s: s.failbacks,
    ),
    (
        "kissha_rotations_total",
        "Planned master changes applied: the weekly rotation, a pin, an edited config.",
        lambda s: s.rotations,
    ),
    (
        "kissha_record_changes_total",
        "Changes applied that kept the master: the standby moved, or the zone files did "
        "not match the config (e.g. edited addresses).",
        lambda s: s.record_changes,
    ),
    (
        "kissha_rollbacks_total",
        "Changes that failed validation, reload or verification and were rolled back.",
        lambda s: s.rollbacks,
    ),
)


def render(report: RunReport, state: State, certs_from: Path | None = None) -> str:
    """The metrics of one run, after its state was updated; pure but for ``certs_from``:
    the state_dir whose certs.json (the last kissha certs run) adds the certificates."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[Labels, float]]) -> None:
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{_labels(labels)} {_number(value)}")

    def probe_labels(node: str, family: str, probe: str) -> Labels:
        return (("node", node), ("family", family), ("probe", probe))

    family(
        "kissha_probe_success",
        "gauge",
        "1 if the probe of this node over this address family passed in the last run.",
        [(probe_labels(r.node, r.family, r.probe), 1 if r.ok else 0) for r in report.probes],
    )
    family(
        "kissha_probe_latency_seconds",
        "gauge",
        "How long the probe took in the last run (probes that got no answer have none).",
        [
            (probe_labels(r.node, r.family, r.probe), r.latency_ms / 1000)
            for r in report.probes
            if r.latency_ms is not None
        ],
    )
    health = report.decision.health
    family(
        "kissha_node_up",
        "gauge",
        "1 if the node is up after debouncing (failures_before_demotion, "
        "successes_before_promotion).",
        [((("node", n),), 1 if h.up else 0) for n, h in health.items()],
    )
    names = list(health)
    if state.roles is not None:
        names += [n for n in (state.roles.master, *state.roles.order) if n not in names]
    master = state.roles.master if state.roles is not None else None
    family(
        "kissha_master",
        "gauge",
        "1 for the node the marked records point at as master, 0 for the others.",
        [((("node", n),), 1 if n == master else 0) for n in names],
    )
    for name, help_text, count in _COUNTERS:
        family(name, "counter", help_text, [((), count(state))])
    family(
        "kissha_last_run_timestamp_seconds",
        "gauge",
        "When the last failover run started, in seconds since the epoch.",
        [((), report.now)],
    )
    family(
        "kissha_last_run_duration_seconds",
        "gauge",
        "How long the last failover run took.",
        [((), report.timings.get("total", 0.0))],
    )
    family(
        "kissha_last_run_exit_code",
        "gauge",
        "The exit code of the last failover run (0 unchanged, 1 changed, 3 rolled back).",
        [((), report.exit_code)],
    )
    if certs_from is not None:
        from kissha.certs import summary

        for name, kind, text, values in summary.metrics(summary.load(certs_from)):
            family(name, kind, text, [((("name", n),), v) for n, v in values])
    return "\n".join(out) + "\n"


def write_textfile(
    path: Path, report: RunReport, state: State, certs_from: Path | None = None
) -> str | None:
    """Write the metrics atomically for node_exporter's textfile collector.

    A failure is returned as a warning: metrics must never stop a failover run."""
    from kissha.files import atomic_write

    try:
        atomic_write(path, render(report, state, certs_from).encode(), mode=0o644)
    except OSError as exc:
        warning = f"metrics.textfile: cannot write {path}: {exc.strerror or exc}"
        log.warning(warning)
        return warning
    return None


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels) + "}"


def escape_label(value: str) -> str:
    """A label value as the exposition format wants it: \\, " and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
