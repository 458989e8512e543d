"""Pure: a monitor run as Prometheus metrics (per check: state, duration, perfdata)."""

from __future__ import annotations

from kissha.monitor import logic
from kissha.monitor.plugin import parse_perf
from kissha.monitor.report import MonitorReport

STATE_VALUE = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3, "STALE": 3, "FLAPPING": 1}
TEXTFILE = "kissha-monitor.prom"


def render(report: MonitorReport) -> str:
    from kissha.observe.metrics import escape_label

    def labels(**kw: str) -> str:
        return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in kw.items()) + "}"

    out = [
        "# HELP kissha_check_state The check's state: 0 OK, 1 WARNING (or flapping), "
        "2 CRITICAL, 3 UNKNOWN (or stale); absent while it waits on a dependency.",
        "# TYPE kissha_check_state gauge",
    ]
    durations, perf = [], []
    for spec in report.specs:
        st = report.states[spec.id]
        if st in STATE_VALUE:
            out.append(
                f"kissha_check_state{labels(check=spec.id, kind=spec.kind)} {STATE_VALUE[st]}"
            )
        rec = report.book.checks.get(spec.id, {})
        if "duration" in rec:
            durations.append(
                f"kissha_check_duration_seconds{labels(check=spec.id)} {float(rec['duration'])!r}"
            )
        for p in parse_perf(" ".join(rec.get("perf", []))):
            names = labels(check=spec.id, label=p.label, uom=p.uom)
            perf.append(f"kissha_check_perfdata{names} {p.value!r}")
    out += [
        "# HELP kissha_check_duration_seconds How long the check's last run took (retries too).",
        "# TYPE kissha_check_duration_seconds gauge",
        *durations,
        "# HELP kissha_check_perfdata The perfdata values of the check's last run.",
        "# TYPE kissha_check_perfdata gauge",
        *perf,
        "# HELP kissha_check_waiting 1 while the check waits on a dependency that is not OK.",
        "# TYPE kissha_check_waiting gauge",
        *(
            f"kissha_check_waiting{labels(check=s.id)} 1"
            for s in report.specs
            if report.states[s.id] == logic.DEPENDENT
        ),
        "# HELP kissha_monitor_last_run_timestamp_seconds When the last monitor run started.",
        "# TYPE kissha_monitor_last_run_timestamp_seconds gauge",
        f"kissha_monitor_last_run_timestamp_seconds {float(report.book.last_run.get('time', 0))!r}",
    ]
    return "\n".join(out) + "\n"
