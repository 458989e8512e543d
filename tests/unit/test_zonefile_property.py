"""Property tests of zone rewriting on generated zone files of every layout.

The generator is a small model of its own: for every marked record it knows the line, the
text around the address, the absolute owner and the role the record must get, so the
properties check kissha against the model (and against dnspython), not against itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import dns.zone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kissha.core.model import Node
from kissha.core.zonefile import fits, next_serial, plan_spliced, plan_zone, serial_gt

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEPS = [" ", "\t", "  ", " \t", "\t\t", "     "]
LEADS = [" ", "\t", "    ", "\t  ", "         "]
LABELS = ["www", "standby", "standby.paul", "www.standby", "standbyfoo", "mail", "paul", "WWW"]
LABELS += ["Standby", "STANDBY.f3s", "standby-old", "xstandby"]
TTLS = ["300", "5m", "1h30m", "3600", "1D", "4h"]
CLASSES = ["IN", "in", "In"]
MARKERS = [
    ("; Enable failover", None),
    (";Enable failover", None),
    (";\tEnable failover", None),
    (";   Enable failover", None),
    ("; Enable failover ; managed by kissha", None),
    ("; Enable failover standby", "standby"),
    ("; Enable failover master", "master"),
    (";Enable failover standby", "standby"),
]
# Comments that must NOT mark a record.
COMMENTS = [
    "; plain comment",
    ";",
    "; (paren",
    '; "quoted (x)" ; note',
    "; do not Enable failover",
    "; Enable-failover",
    "; café",
]
COMMENT_LINES = [
    "; Enable failover",
    "; Enable failover: marks the records below",
    "   ; Enable failover standby",
    "\t; comment (x)",
    '; "quoted"',
    ";",
]
TXT_PIECES = ["v=spf1", " ", ";", "(", ")", "Enable failover", "; Enable failover", '\\"', "x"]


@dataclass
class Marked:
    line: int
    prefix: str
    old: str
    suffix: str
    owner: str  # absolute, lower case
    rrtype: str
    role: str


@dataclass
class Generated:
    zone: str
    eol: str
    lines: list[str] = field(default_factory=list)
    marked: list[Marked] = field(default_factory=list)
    serial_line: int = -1
    serial_prefix: str = ""
    serial_suffix: str = ""
    old_serial: int = 0

    @property
    def text(self) -> str:
        return self.eol.join(self.lines) + self.eol


def render_ipv6(draw: st.DrawFn, address: str) -> str:
    ip = ipaddress.IPv6Address(address)
    form = draw(st.sampled_from(["compressed", "exploded", "upper", "upper-exploded"]))
    if form == "compressed":
        return ip.compressed
    if form == "exploded":
        return ip.exploded
    if form == "upper":
        return ip.compressed.upper()
    return ip.exploded.upper()


@st.composite
def nodes(draw: st.DrawFn) -> dict[str, Node]:
    out = {}
    for role, name in (("master", "blowfish"), ("standby", "fishfinger")):
        v4 = str(draw(st.ip_addresses(v=4)))
        v6 = str(draw(st.ip_addresses(v=6)))
        out[role] = Node(name, f"{name}.example.org", v4, v6)
    return out


@st.composite
def zone_files(draw: st.DrawFn, targets: dict[str, Node]) -> Generated:
    zone = draw(st.sampled_from(["example.org.", "foo.zone.", "a.example."]))
    g = Generated(zone, draw(st.sampled_from(["\n", "\r\n"])))

    def sep() -> str:
        return draw(st.sampled_from(SEPS))

    def lead() -> str:
        return draw(st.sampled_from(LEADS))

    def ttl_class() -> str:
        ttl = draw(st.none() | st.sampled_from(TTLS))
        cls = draw(st.none() | st.sampled_from(CLASSES))
        parts = [p for p in (ttl, cls) if p]
        if draw(st.booleans()):
            parts.reverse()
        return "".join(p + sep() for p in parts)

    if draw(st.booleans()):
        g.lines.append(f"$ORIGIN{sep()}{zone}")
    g.lines.append(f"$TTL{sep()}{draw(st.sampled_from(TTLS))}")
    origin = zone

    # The SOA, in one of three layouts.
    g.old_serial = draw(st.integers(0, 2**32 - 1))
    soa_owner = draw(st.sampled_from(["@", zone, zone.upper()]))
    head = f"{soa_owner}{sep()}{ttl_class()}SOA{sep()}ns1.{zone}{sep()}hostmaster.{zone}{sep()}"
    form = draw(st.sampled_from(["one-line", "multi-line", "parens-one-line"]))
    if form == "one-line":
        g.serial_line = len(g.lines)
        g.serial_prefix = head
        g.serial_suffix = f"{sep()}1h{sep()}15m{sep()}1w{sep()}1h"
        if draw(st.booleans()):
            g.serial_suffix += sep() + draw(st.sampled_from(COMMENTS))
        g.lines.append(f"{g.serial_prefix}{g.old_serial}{g.serial_suffix}")
    elif form == "parens-one-line":
        g.serial_line = len(g.lines)
        g.serial_prefix = head + "(" + sep()
        g.serial_suffix = f"{sep()}3600 900 604800 300{sep()})"
        g.lines.append(f"{g.serial_prefix}{g.old_serial}{g.serial_suffix}")
    else:
        g.lines.append(head + "(")
        g.serial_line = len(g.lines)
        g.serial_prefix = lead()
        g.serial_suffix = sep() + "; serial"
        g.lines.append(f"{g.serial_prefix}{g.old_serial}{g.serial_suffix}")
        for value, what in (("1h", "refresh"), ("15m", "retry"), ("1w", "expire")):
            g.lines.append(f"{lead()}{value}{sep()}; {what}")
        g.lines.append(f"{lead()}1h ){sep()}; negative")
    last_owner = zone

    # An NS at the apex (check_origin wants one).
    ns_owner = draw(st.sampled_from(["", "@", zone]))
    g.lines.append(f"{ns_owner or lead()}{sep() if ns_owner else ''}{ttl_class()}NS{sep()}ns1")

    def owner_part() -> tuple[str, str]:
        """The owner field as written (with its separator) and the absolute owner."""
        nonlocal last_owner
        form = draw(st.sampled_from(["relative", "absolute", "@", "omitted"]))
        if form == "omitted":
            return lead(), last_owner
        if form == "@":
            written, owner = "@", origin
        else:
            label = draw(st.sampled_from(LABELS))
            owner = f"{label}.{origin}".lower()
            written = label if form == "relative" else f"{label}.{origin}"
        last_owner = owner
        return written + sep(), owner

    items = draw(
        st.lists(
            st.sampled_from(
                ["A", "AAAA", "A", "AAAA", "NS", "MX", "TXT", "TXT2", "comment", "blank", "origin"]
            ),
            min_size=1,
            max_size=25,
        )
    )
    for item in items:
        if item == "comment":
            g.lines.append(draw(st.sampled_from(COMMENT_LINES)))
        elif item == "blank":
            g.lines.append(draw(st.sampled_from(["", " ", "\t"])))
        elif item == "origin":
            origin = draw(st.sampled_from([zone, f"paul.{zone}", f"standby.{zone}"]))
            g.lines.append(f"$ORIGIN{sep()}{origin}")
        elif item in ("NS", "MX", "TXT"):
            written, _ = owner_part()
            rdata = {
                "NS": "ns1",
                "MX": f"10{sep()}mail",
                "TXT": '"' + "".join(draw(st.lists(st.sampled_from(TXT_PIECES)))) + '"',
            }[item]
            line = f"{written}{ttl_class()}{item}{sep()}{rdata}"
            if draw(st.booleans()):
                line += sep() + draw(st.sampled_from(COMMENTS))
            g.lines.append(line)
        elif item == "TXT2":
            written, _ = owner_part()
            first = "".join(draw(st.lists(st.sampled_from(TXT_PIECES))))
            second = "".join(draw(st.lists(st.sampled_from(TXT_PIECES))))
            g.lines.append(f'{written}{ttl_class()}TXT{sep()}({sep()}"{first}"')
            g.lines.append(f'{lead()}"{second}"{sep()}){sep()}{draw(st.sampled_from(COMMENTS))}')
        else:
            family = "ipv4" if item == "A" else "ipv6"
            choices = [targets["master"].address(family), targets["standby"].address(family)]
            if item == "A":
                old = draw(st.sampled_from(choices) | st.ip_addresses(v=4).map(str))
            else:
                old = draw(st.sampled_from(choices) | st.ip_addresses(v=6).map(str))
                old = render_ipv6(draw, old)
            written, owner = owner_part()
            prefix = f"{written}{ttl_class()}{item}{sep()}"
            suffix = ""
            if draw(st.integers(0, 4)) == 0:
                prefix += "(" + sep()
                suffix = sep() + ")"
            if draw(st.booleans()):
                marker, explicit = draw(st.sampled_from(MARKERS))
                suffix += draw(st.sampled_from(["", *SEPS])) + marker
                first_label = owner.split(".", 1)[0]
                role = explicit or ("standby" if first_label == "standby" else "master")
                g.marked.append(Marked(len(g.lines), prefix, old, suffix, owner, item, role))
            elif draw(st.booleans()):
                suffix += sep() + draw(st.sampled_from(COMMENTS))
            g.lines.append(prefix + old + suffix)
    return g


def target(g: Generated, m: Marked, targets: dict[str, Node]) -> str:
    address = targets[m.role].address("ipv4" if m.rrtype == "A" else "ipv6")
    assert address is not None
    return address


def must_change(old: str, new: str) -> bool:
    return ipaddress.ip_address(old) != ipaddress.ip_address(new)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Generated, dict[str, Node], int]:
    targets = draw(nodes())
    return draw(zone_files(targets)), targets, draw(st.integers(10**9, 2**32 + 10**6))


def parse(text: str, zone: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=zone, relativize=False, check_origin=True)


@SETTINGS
@given(cases())
def test_generated_zone_is_valid_input(case: tuple[Generated, dict[str, Node], int]) -> None:
    # Guards the generator: what kissha is fed is a zone dnspython accepts.
    g, _, _ = case
    parse(g.text, g.zone)


@SETTINGS
@given(cases())
def test_only_marked_addresses_and_serial_change(
    case: tuple[Generated, dict[str, Node], int],
) -> None:
    g, targets, now = case
    plan = plan_zone(g.zone, Path("z.zone"), g.text, targets, "epoch", now)
    needed = [m for m in g.marked if must_change(m.old, target(g, m, targets))]
    assert plan.changed == bool(needed)
    assert len(plan.changes) == len(needed)
    if not plan.changed:
        assert plan.new_text is None
        return
    assert plan.new_text is not None
    old_lines = g.text.split(g.eol)
    new_lines = plan.new_text.split(g.eol)
    # (d) same number of lines; every line that is neither marked nor the serial is unchanged.
    assert len(new_lines) == len(old_lines)
    special = {m.line for m in g.marked} | {g.serial_line}
    for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)):
        if n not in special:
            assert a == b, n
    # (a) the serial line differs in the serial only, which is greater (RFC 1982)...
    assert plan.old_serial == g.old_serial
    assert plan.new_serial == next_serial(g.old_serial, "epoch", now)
    assert serial_gt(plan.new_serial, g.old_serial)
    assert new_lines[g.serial_line] == f"{g.serial_prefix}{plan.new_serial}{g.serial_suffix}"
    # ... and a marked line in its address only: put the old address back, get the old line.
    for m in g.marked:
        new = target(g, m, targets)
        if must_change(m.old, new):
            assert new_lines[m.line] == m.prefix + new + m.suffix
            assert new_lines[m.line].replace(new, m.old, 1) == old_lines[m.line]
        else:
            assert new_lines[m.line] == old_lines[m.line]


@SETTINGS
@given(cases())
def test_rewritten_zone_serves_the_targets(case: tuple[Generated, dict[str, Node], int]) -> None:
    # (b) dnspython reads the result, and every marked owner/type holds its target address.
    g, targets, now = case
    plan = plan_zone(g.zone, Path("z.zone"), g.text, targets, "epoch", now)
    z = parse(plan.new_text or g.text, g.zone)
    for m in g.marked:
        rds = z.get_rdataset(m.owner, m.rrtype)
        assert rds is not None, (m.owner, m.rrtype)
        served = {ipaddress.ip_address(rd.address) for rd in rds}
        assert ipaddress.ip_address(target(g, m, targets)) in served
        assert ipaddress.ip_address(target(g, m, targets)) in {
            ipaddress.ip_address(a) for a in plan.expected[(m.owner, m.rrtype)]
        }
        assert served == {ipaddress.ip_address(a) for a in plan.expected[(m.owner, m.rrtype)]}
    soa = z.get_rdataset(g.zone, "SOA")
    assert soa is not None
    assert soa[0].serial == (plan.new_serial if plan.changed else g.old_serial)


@SETTINGS
@given(cases(), st.integers(0, 2**32 - 1))
def test_rewriting_twice_changes_nothing(
    case: tuple[Generated, dict[str, Node], int], later: int
) -> None:
    # (c) idempotence: the second run finds every marked record already right.
    g, targets, now = case
    first = plan_zone(g.zone, Path("z.zone"), g.text, targets, "epoch", now)
    text = first.new_text or g.text
    second = plan_zone(g.zone, Path("z.zone"), text, targets, "epoch", later)
    assert second.new_text is None
    assert second.changes == ()
    assert dict(second.expected) == dict(first.expected)
    assert dict(second.previous) == dict(first.expected)


@SETTINGS
@given(cases(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_splicing_at_the_layout_plans_what_scanning_plans(
    case: tuple[Generated, dict[str, Node], int], later: int, latest: int
) -> None:
    # A switch spliced at the layout the previous plan left (engine/scancache.py keeps
    # it) is the plan a full scan of that text makes: text, changes, answers, layout.
    g, targets, now = case
    swapped = {"master": targets["standby"], "standby": targets["master"]}
    plan = plan_zone(g.zone, Path("z.zone"), g.text, targets, "epoch", now)
    text = plan.new_text or g.text
    for moment, roles in ((later, swapped), (latest, targets)):
        if plan.layout is None:
            assert not g.marked
            return
        assert fits(text, plan.layout)
        spliced = plan_spliced(g.zone, Path("z.zone"), text, plan.layout, roles, "epoch", moment)
        scanned = plan_zone(g.zone, Path("z.zone"), text, roles, "epoch", moment)
        assert spliced == scanned
        plan, text = scanned, scanned.new_text or text
