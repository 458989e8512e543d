"""nftables scripts for the network lab's faults: pure text, one table per fault kind.

Each fault is one table, so undoing it is deleting that table. The scripts start with
"add table; delete table" so that applying a fault twice replaces it instead of failing,
and so that undoing a fault that is not there is no error (nft 1.0.6 has no "destroy").
Loopback is always exempt: a node must keep reaching its own nsd on 127.0.0.1 and ::1.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Family = Literal["ipv4", "ipv6"]
FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")

_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


@dataclass(frozen=True)
class Table:
    family: str  # nft's: ip, ip6 or inet
    name: str

    def __post_init__(self) -> None:
        if self.family not in ("ip", "ip6", "inet") or not _NAME.fullmatch(self.name):
            raise ValueError(f"not a lab nft table: {self.family} {self.name}")

    def replace(self, body: str) -> str:
        """The script that installs this table with body, replacing any previous version."""
        ref = f"{self.family} {self.name}"
        return f"add table {ref}\ndelete table {ref}\ntable {ref} {{\n{body}}}\n"

    def remove(self) -> str:
        ref = f"{self.family} {self.name}"
        return f"add table {ref}\ndelete table {ref}\n"


def _chain(name: str, hook: str, rules: Sequence[str]) -> str:
    lines = [f"    chain {name} {{", f"        type filter hook {hook} priority 0; policy accept;"]
    lines += [f"        {r}" for r in rules]
    return "\n".join(lines) + "\n    }\n"


def break_family_table(family: Family) -> Table:
    return Table("ip" if family == "ipv4" else "ip6", "kissha_break")


def break_family(family: Family) -> str:
    """Drop every packet of that family in and out, except on loopback."""
    table = break_family_table(family)
    return table.replace(
        _chain("input", "input", ['iifname "lo" accept', "drop"])
        + _chain("output", "output", ['oifname "lo" accept', "drop"])
    )


LOSS_TABLE = Table("inet", "kissha_loss")


def packet_loss(percent: int) -> str:
    """Drop about percent % of the packets arriving from the network (as the notes show)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"packet loss is a percentage, not {percent}")
    # nft rejects "< 100" as out of range for "mod 100", so all and nothing are spelled out.
    drop = ["drop"] if percent == 100 else [f"numgen random mod 100 < {percent} drop"]
    return LOSS_TABLE.replace(
        _chain("input", "input", ['iifname "lo" accept', *(drop if percent else [])])
    )


def cut_table(peer: str) -> Table:
    return Table("inet", f"kissha_cut_{peer}")


def cut_link(peer: str, peer_addresses: Sequence[str]) -> str:
    """Drop traffic to and from one peer's addresses only; everyone else still gets through."""
    incoming, outgoing = [], []
    for text in peer_addresses:
        address = ipaddress.ip_address(text)
        proto = "ip" if address.version == 4 else "ip6"
        incoming.append(f"{proto} saddr {address} drop")
        outgoing.append(f"{proto} daddr {address} drop")
    return cut_table(peer).replace(
        _chain("input", "input", incoming) + _chain("output", "output", outgoing)
    )


def ports_table(peer: str) -> Table:
    return Table("inet", f"kissha_ports_{peer}")


def cut_ports(peer: str, peer_addresses: Sequence[str], ports: Sequence[int]) -> str:
    """Drop what one peer sends to these TCP ports; every other packet gets through (a
    partial partition: the web is cut between the nodes, their nameservers still talk)."""
    if not ports or not all(0 < p < 65536 for p in ports):
        raise ValueError(f"not TCP ports: {ports!r}")
    wanted = ", ".join(str(p) for p in ports)
    rules = []
    for text in peer_addresses:
        address = ipaddress.ip_address(text)
        proto = "ip" if address.version == 4 else "ip6"
        rules.append(f"{proto} saddr {address} tcp dport {{ {wanted} }} drop")
    return ports_table(peer).replace(_chain("input", "input", rules))
