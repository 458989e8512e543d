"""kissha monitor: the original's Gogios checks (Nagios plugins, kissha's own probes,
certificates, nameservers, local disk/load/swap), run from every node with retries,
dependencies and state, and one message per change through the [notify] channels.

Imported only by ``kissha monitor`` (and by status, page, metrics and the daemon when a
monitor state exists): a failover run never pays for it.
"""
