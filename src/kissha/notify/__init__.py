"""Notifications: the state's new events to mail and webhooks, each once per channel.

Imported only when the config has a [notify] table. ``publish`` runs after the state
is saved (a run's events have their ids) and never raises: a failed delivery is a
warning and is tried again in a later run.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from kissha.notify import outbox as outboxmod
from kissha.notify import plan, render
from kissha.notify.kinds import KINDS

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.core.report import RunReport
    from kissha.engine.state import State

log = logging.getLogger(__name__)


def whoami(config: Config) -> tuple[str | None, str]:
    """This node's name (None if unknown) and the host name for mail headers.

    ``[notify] node`` wins; else a node whose name is the host name's first label or
    whose fqdn is the host name."""
    host = socket.gethostname()
    assert config.notify is not None
    if config.notify.node is not None:
        return config.notify.node, host
    short = host.split(".")[0].lower()
    for node in config.nodes:
        if node.name.lower() == short or node.fqdn == host.lower().rstrip("."):
            return node.name, host
    return None, host


def publish(
    config: Config,
    st: State,
    now: float,
    seq_before: int,
    report: RunReport | None,
    outbox: str = outboxmod.NAME,
) -> list[str]:
    """Queue the events after ``seq_before`` (and due reminders), deliver what the rate
    limit and backoff allow, save the outbox; returns warnings. Never raises.

    ``outbox``: the file in state_dir; kissha status --notify keeps its own."""
    try:
        return _publish(config, st, now, seq_before, report, outbox)
    except Exception as exc:
        warning = f"notify: internal error: {type(exc).__name__}: {exc}"
        log.warning(warning, exc_info=log.isEnabledFor(logging.DEBUG))
        return [warning]


def _publish(
    config: Config,
    st: State,
    now: float,
    seq_before: int,
    report: RunReport | None,
    outbox: str,
) -> list[str]:
    nc = config.notify
    assert nc is not None
    me, host = whoami(config)
    box_file, warnings = outboxmod.load(config.state_dir, outbox)
    before = box_file.dumps()
    ctx = render.Context(config, me or host, now, report, st)
    master = st.roles.master if st.roles is not None else None
    may_send = {k: plan.sends(k, me, master, nc.cluster_events) for k in KINDS}

    def warn(words: str) -> None:  # in the run's output, and in the daemon's log
        warnings.append(f"notify: {words}")
        log.warning("notify: %s", words)

    jobs = []
    for channel in nc.channels:
        box = box_file.channels.get(channel.name)
        if box is None or box.cursor > st.seq:  # new channel, or the state started afresh
            box = box_file.channels[channel.name] = plan.Box(
                cursor=min(seq_before, st.seq), pending=box.pending if box else []
            )
        new = [e for e in st.events if e.id > box.cursor]
        missed = (new[0].id if new else st.seq + 1) - box.cursor - 1
        if missed > 0:  # gone from the state's history (MAX_EVENTS) before taken in
            warn(
                f"channel {channel.name}: {missed} event(s) left the state's history "
                "before they could be told (notify.json was not saved?)"
            )
        box.pending += plan.notices(new, channel.events, may_send, ctx)
        box.cursor = st.seq
        due = plan.reminder(box, st.problems, channel.events, may_send, nc.reminder, ctx)
        if due is not None:
            box.pending.append(due)
        jobs.append((channel, box, plan.select(box, now, nc.rate_limit)))
    if any(out for _, _, out in jobs):
        from kissha.notify.deliver import deliver_all

        results = deliver_all([(c, out) for c, _, out in jobs], nc.timeout, host)
        for (_, box, out), errors in zip(jobs, results, strict=True):
            for warning in plan.settle(box, out, errors, now, nc.retry):
                warn(warning)
    for name in [n for n in box_file.channels if n not in {c.name for c in nc.channels}]:
        # A channel removed from the config (or renamed): what waited for it goes, said.
        waiting = len(box_file.channels.pop(name).pending)
        if waiting:
            warn(
                f"channel {name} is no longer in the config: "
                f"{waiting} notification(s) waiting for it dropped"
            )
    if box_file.dumps() != before:
        warnings.extend(outboxmod.save(config.state_dir, box_file, outbox))
    return warnings
