"""watch_nameservers: during a failover run, ask every node's nameserver which master
its marked names point at (kissha status's ``Asking``), to see split brain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.status import Asking


@dataclass
class Watch:
    """Started before the probes, read after them: both take about one timeout."""

    asking: Asking | None  # None: nothing to ask (no zone file; the run reports it)

    @classmethod
    def start(cls, config: Config) -> Watch:
        from kissha import status

        assert config.notify is not None
        try:
            asking = status.Asking(config, config.notify.watch_port, config.health.timeout * 2)
        except Exception:
            asking = None
        return cls(asking)

    def result(self) -> tuple[dict[str, tuple[str, ...]], bool]:
        """label ("blowfish/ipv4") -> the masters its answers name (empty: unreachable or
        no answer), and whether every nameserver answered."""
        if self.asking is None:
            return {}, False
        views = self.asking.views()
        masters = {v.label: v.master for v in views}
        complete = bool(views) and all(v.error is None and v.master for v in views)
        return masters, complete
