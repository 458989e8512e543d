"""After a run's files are written: the reload hooks, and what [notify] is told."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from kissha.certs.settings import CertsConfig
from kissha.core.model import iso

if TYPE_CHECKING:
    from kissha.certs.report import Report
    from kissha.config import Config

NOTIFY_STATE = "certs-state.json"  # events and open problems, as the failover's state
NOTIFY_OUTBOX = "certs-notify.json"


def hooks(cc: CertsConfig, report: Report) -> None:
    """Each reload command once, in order, whatever number of names changed."""
    for command in cc.reload:
        text = " ".join(command)
        report.hooks.append(text)
        try:
            done = subprocess.run(
                list(command),
                capture_output=True,
                text=True,
                timeout=cc.hook_timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            report.hook_errors.append(f"{text}: {exc}")
            continue
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            report.hook_errors.append(f"{text}: exit {done.returncode}: {tail[0]}")


def tell(config: Config, cc: CertsConfig, report: Report, now: float) -> list[str]:
    """Failures and near expiry, each once while it lasts, through [notify]."""
    from kissha.engine import state as statefile

    st, warning = statefile.load(config.state_dir, NOTIFY_STATE)
    seq = st.seq
    failed = report.failed
    if failed:
        text = "; ".join(f"{r.name}: {r.error}" for r in failed)
        st.open_problem(
            now,
            "cert-failed",
            "cert-failed",
            f"{len(failed)} certificate(s) not obtained on {report.node}: {text}",
            names=[r.name for r in failed],
        )
    elif not any(r.error for r in report.names) and st.close_problem("cert-failed"):
        st.add_event(now, "cert-ok", f"certificates obtained again on {report.node}")
    soon = [
        r
        for r in report.names
        if r.not_after is not None and r.not_after - now < cc.warn_days * 86400
    ]
    if soon:
        text = ", ".join(f"{r.name} ({iso(r.not_after or 0)})" for r in soon)
        st.open_problem(
            now,
            "cert-expiry",
            "cert-failed",
            f"certificates on {report.node} expire within {cc.warn_days} days: {text}",
            names=[r.name for r in soon],
        )
    else:
        st.close_problem("cert-expiry")
    statefile.save(config.state_dir, st, NOTIFY_STATE)
    warnings = [warning] if warning else []
    if config.notify is not None:  # also for reminders and retries of earlier notices
        from kissha import notify

        warnings += notify.publish(config, st, now, seq, None, outbox=NOTIFY_OUTBOX)
    return warnings
