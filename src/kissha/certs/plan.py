"""Pure: which names this node holds a certificate for, and which it may ask for now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kissha.config.sites import SiteName
from kissha.core.model import Roles


@dataclass(frozen=True)
class Wanted:
    """One name this node's TLS servers are configured for."""

    name: SiteName
    request: bool  # may ask the CA now (else placeholder only, if nothing is there)
    why: str  # why not, when request is False; "" otherwise


def held_names(names: Sequence[SiteName], me: str, exclude: Sequence[str] = ()) -> list[SiteName]:
    """The names this node's servers are configured for: every site name served over
    TLS, and its own FQDN (another node's FQDN never points here)."""
    return [
        n for n in names if n.serve and n.name not in exclude and (n.kind != "node" or n.node == me)
    ]


def served_here(name: SiteName, me: str, roles: Roles | None) -> bool:
    """Whether the DNS points ``name`` at this node, by this node's kissha roles."""
    if name.kind == "node":
        return name.node == me
    if roles is None:
        return False
    return (roles.standby if name.kind == "standby" else roles.master) == me


def select(
    names: Sequence[SiteName],
    strategy: str,
    me: str,
    roles: Roles | None,
    split_brain: str | None,
) -> list[Wanted]:
    """Whether each held name may be requested now.

    ``every-node``: every name, whatever the roles (the HTTP-01 redirect chain reaches
    this node wherever the name points). ``when-served``: only names pointing here.
    During a split brain that the run can see, no site name is requested: the CA's
    vantage points may each reach a different node with different answers. A node's
    own FQDN never moves, so it is still requested."""
    out = []
    for n in names:
        if n.kind != "node" and split_brain:
            out.append(Wanted(n, False, f"split brain ({split_brain}): not requesting"))
        elif strategy == "when-served" and not served_here(n, me, roles):
            where = "no roles known yet" if roles is None else f"points at {_target(n, roles)}"
            out.append(Wanted(n, False, f"not served here ({where})"))
        else:
            out.append(Wanted(n, True, ""))
    return out


def _target(name: SiteName, roles: Roles) -> str:
    return roles.standby if name.kind == "standby" else roles.master
