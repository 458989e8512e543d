"""DNS: the one query client, the wire reader, verification and the server backends.

``server_for`` picks a backend; importing this package imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.dns.backend import DnsServer


def server_for(config: Config) -> DnsServer:
    """The backend named by ``dns.server`` (nsd; Knot, BIND and RFC 2136 fit here)."""
    from kissha.dns.nsd import NsdServer

    backends = {"nsd": NsdServer}
    return backends[config.dns.server](config.dns, config.state_dir)
