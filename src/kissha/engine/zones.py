"""Which zone files this node manages: the zones directory and its globs, resolved, with
what is wrong in words. A failover run asks this before any probe leaves the machine."""

from __future__ import annotations

from kissha.config import DnsConfig, ZoneRef, zone_refs
from kissha.errors import ConfigError


def managed_zones(dns: DnsConfig) -> tuple[list[ZoneRef], list[str]]:
    """The zone files to manage, and the problems that leave none (or some) unknown:
    a missing zones directory, one that is not a directory, no file matching."""
    directory = dns.zones_dir
    listed = [z for z in dns.zones if isinstance(z, ZoneRef)]
    if not directory.exists():
        return listed, [f"{directory}: the zones directory (dns.zones_dir) does not exist"]
    if not directory.is_dir():
        return [], [f"{directory}: the zones directory (dns.zones_dir) is not a directory"]
    try:
        refs = zone_refs(dns)
    except ConfigError as exc:
        return [], list(exc.problems)
    except OSError as exc:
        return [], [f"{directory}: cannot list the zones directory: {exc.strerror}"]
    if not refs:
        patterns = ", ".join(repr(z) for z in dns.zones)
        return [], [f"{directory}: no zone file matches {patterns} (dns.zones)"]
    return refs, []
