"""Split brain: during a failover run (watch_nameservers), ask every node's nameserver
which master its marked names point at, with kissha status's ``Asking``; and kissha
status --notify, which tells what a monitoring host sees."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.observe.asking import Asking
    from kissha.observe.verdict import NsView


@dataclass
class Watch:
    """Started before the probes, read after them: both take about one timeout."""

    asking: Asking | None  # None: nothing to ask (no zone file; the run reports it)

    @classmethod
    def start(cls, config: Config) -> Watch:
        from kissha.observe.asking import Asking as Ask

        assert config.notify is not None
        try:
            asking = Ask(config, config.notify.watch_port, config.health.timeout * 2)
        except Exception:
            asking = None
        return cls(asking)

    def result(self) -> tuple[dict[str, tuple[str, ...]], bool]:
        """label ("blowfish/ipv4") -> the masters its answers name (empty: unreachable or
        no answer), and whether every nameserver answered."""
        if self.asking is None:
            return {}, False
        return masters_of(self.asking.views())


def masters_of(views: Sequence[NsView]) -> tuple[dict[str, tuple[str, ...]], bool]:
    masters = {v.label: v.master for v in views}
    complete = bool(views) and all(v.error is None and v.master for v in views)
    return masters, complete


STATUS_STATE = "status-state.json"
STATUS_OUTBOX = "status-notify.json"


def from_status(config: Config, views: Sequence[NsView], now: float) -> list[str]:
    """kissha status --notify: split brain as seen from here (a host that reaches every
    nameserver), kept in its own small state and outbox beside the node's; warnings."""
    from kissha import notify
    from kissha.core import events
    from kissha.engine import state as statefile
    from kissha.files import RunLock

    assert config.notify is not None
    masters, complete = masters_of(views)
    with RunLock(config.state_dir / "status.lock"):
        st, warning = statefile.load(config.state_dir, STATUS_STATE)
        before, seq = json.dumps(st.to_json(), sort_keys=True), st.seq
        events.fold_split_brain(st, masters, complete, now, config.notify.split_brain_after)
        if json.dumps(st.to_json(), sort_keys=True) != before:  # to_json shares dicts
            statefile.save(config.state_dir, st, STATUS_STATE)
        warnings = [warning] if warning else []
        return warnings + notify.publish(config, st, now, seq, None, outbox=STATUS_OUTBOX)
