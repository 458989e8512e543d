"""kissha status, the I/O edge: every nameserver asked (asking.py), every node probed
and the state read, at the same time. The pure verdict is in verdict.py, the
rendering in statustext.py.
"""

from __future__ import annotations

from typing import Any

from kissha.config import Config
from kissha.observe.asking import Asking
from kissha.observe.verdict import Observation, Report, judge

DEFAULT_STALE_AFTER = 600.0
LAST_EVENTS = 5


def collect(config: Config, now: float, *, port: int = 53, stale_after: float) -> Report:
    """Ask every nameserver and probe every node, at the same time; read the state."""
    from kissha.engine import state as statefile
    from kissha.probes import run_round
    from kissha.probes.tofu import ProbeContext

    asking = Asking(config, port, config.health.timeout * 2)
    context = ProbeContext.load(config.state_dir, readonly=True)
    probes = run_round(config.nodes, config.health, context)
    views = asking.views()
    st, state_warning = statefile.load_readonly(config.state_dir)
    last = st.last_run.get("time")
    obs = Observation(
        now=now,
        views=views,
        probes=tuple(probes),
        nodes=config.node_names,
        last_run=float(last) if isinstance(last, int | float) else None,
        stale_after=stale_after,
        roles=st.roles,
        health={n: h.up for n, h in st.health.items()},
        events=tuple(st.events[-LAST_EVENTS:]),
        state_warning=state_warning,
        zones_skipped=asking.skipped,
        checks=monitor_checks(config, now),
    )
    return Report(obs, judge(obs))


def monitor_checks(config: Config, now: float) -> tuple[Any, ...] | None:
    """kissha monitor's checks, when it runs here (imported only then)."""
    if not (config.state_dir / "monitor.json").exists():
        return None
    from kissha.monitor.run import shown

    return shown(config, now)
