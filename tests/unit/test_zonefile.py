"""Zone rewriting: golden files (tests/zones/NAME.zone -> NAME.expected), errors, serials, diff.

The golden setup: blowfish is the master, fishfinger the standby, serial policy "epoch",
now = 1800000000. A file's zone is its stem up to the first "--" (``example.org--tabs.zone``
is the zone ``example.org.``). Files are compared as bytes: they are read as bytes and
decoded as UTF-8 with surrogateescape, so non-UTF-8 bytes survive the round trip.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import dns.zone
import pytest

from kissha.core.model import Node
from kissha.core.zonefile import ZonePlan, diff, next_serial, plan_zone, scan, serial_gt
from kissha.errors import ZoneError

ZONES = Path(__file__).resolve().parent.parent / "zones"
MASTER = Node("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8:1::12")
STANDBY = Node("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8:1::11")
TARGETS = {"master": MASTER, "standby": STANDBY}
NOW = 1800000000
GOLDEN = sorted(ZONES.glob("*.zone"))


def zone_of(path: Path) -> str:
    return path.stem.split("--", 1)[0] + "."


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def plan_text(text: str, zone: str = "example.org.", path: str = "zones/example.org.zone"):
    return plan_zone(zone, Path(path), text, TARGETS, "epoch", NOW)


def plan_file(path: Path) -> ZonePlan:
    return plan_zone(zone_of(path), path, read(path), TARGETS, "epoch", NOW)


# --- golden files --------------------------------------------------------------------------


def test_golden_files_exist() -> None:
    assert len(GOLDEN) >= 20
    for path in GOLDEN:
        assert path.with_suffix(".expected").is_file(), path


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(path: Path) -> None:
    text = read(path)
    plan = plan_file(path)
    got = (plan.new_text or text).encode("utf-8", "surrogateescape")
    want = path.with_suffix(".expected").read_bytes()
    assert got == want
    if plan.changed:
        assert plan.new_serial == NOW
    else:
        assert want == path.read_bytes()


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_expected_is_a_valid_zone(path: Path) -> None:
    # The hand-written outputs must themselves be zones that serve the planned addresses.
    plan = plan_file(path)
    text = path.with_suffix(".expected").read_bytes().decode("latin-1")
    z = dns.zone.from_text(text, origin=zone_of(path), relativize=False, check_origin=True)
    for (owner, rrtype), addresses in plan.expected.items():
        rds = z.get_rdataset(owner, rrtype)
        assert rds is not None, (owner, rrtype)
        served = {ipaddress.ip_address(rd.address) for rd in rds}
        assert served == {ipaddress.ip_address(a) for a in addresses}


def test_zone_already_pointing_right_is_left_alone() -> None:
    path = ZONES / "example.org--already.zone"
    plan = plan_file(path)
    # Only the serial would change (uppercase / expanded IPv6 equal the targets): no change.
    assert plan.new_text is None
    assert not plan.changed
    assert plan.changes == ()
    assert plan.old_serial == plan.new_serial == 1700000000
    assert diff(plan) == ""
    assert path.with_suffix(".expected").read_bytes() == path.read_bytes()


def test_golden_roles() -> None:
    s = scan(read(ZONES / "example.org--standby-names.zone"), "example.org.")
    roles = {(r.owner, r.rrtype): r.role for r in s.marked}
    assert roles == {
        ("standbyfoo.example.org.", "A"): "master",
        ("standby.example.org.", "A"): "standby",
        ("standby.paul.example.org.", "A"): "standby",
        ("www.standby.example.org.", "A"): "master",
        ("standby-old.example.org.", "A"): "master",
        ("xstandby.example.org.", "AAAA"): "master",
    }
    s = scan(read(ZONES / "example.org--explicit.zone"), "example.org.")
    assert [(r.owner, r.role, r.explicit) for r in s.marked] == [
        ("www.example.org.", "standby", True),
        ("www.example.org.", "standby", True),
        ("standby.example.org.", "master", True),
        ("standby.paul.example.org.", "master", True),
        ("mirror.example.org.", "master", True),
        ("standby.www.example.org.", "standby", True),
    ]


def test_seed_changes() -> None:
    plan = plan_file(ZONES / "example.org--seed.zone")
    assert [(c.line + 1, c.owner, c.rrtype, c.role, c.old, c.new) for c in plan.changes] == [
        (12, "example.org.", "A", "master", "192.0.2.10", "198.51.100.12"),
        (13, "example.org.", "AAAA", "master", "2001:db8::10", "2001:db8:1::12"),
        (14, "www.example.org.", "A", "master", "192.0.2.10", "198.51.100.12"),
        (15, "standby.example.org.", "A", "standby", "192.0.2.20", "198.51.100.11"),
        (16, "standby.paul.example.org.", "AAAA", "standby", "2001:db8::20", "2001:db8:1::11"),
        (17, "www.f3s.example.org.", "A", "master", "192.0.2.10", "198.51.100.12"),
    ]
    assert (plan.old_serial, plan.new_serial) == (1700000000, NOW)


# --- errors ---------------------------------------------------------------------------------

SOA = "@ IN SOA ns1 hostmaster 1700000000 3600 900 604800 300\n@ IN NS ns1\n"


def test_node_without_ipv6_for_a_marked_aaaa() -> None:
    text = "$ORIGIN example.org.\n$TTL 300\n" + SOA
    text += "www 300 IN A 192.0.2.10 ; Enable failover\n"
    text += "www 300 IN AAAA 2001:db8::10 ; Enable failover\n"
    v4only = Node("blowfish", "blowfish.example.org", "198.51.100.12", None)
    with pytest.raises(ZoneError) as e:
        plan_zone(
            "example.org.",
            Path("zones/example.org.zone"),
            text,
            {"master": v4only, "standby": STANDBY},
            "epoch",
            NOW,
        )
    msg = str(e.value)
    assert "zones/example.org.zone:6" in msg
    assert "blowfish" in msg
    assert "www.example.org." in msg
    assert "AAAA" in msg
    assert "ipv6" in msg


def test_standby_without_ipv4_for_a_marked_a() -> None:
    text = SOA + "standby 300 IN A 192.0.2.20 ; Enable failover\n"
    v6only = Node("fishfinger", "fishfinger.example.org", None, "2001:db8:1::11")
    with pytest.raises(ZoneError, match=r"z\.zone:3: .*fishfinger \(standby\).*ipv4"):
        plan_zone("example.org.", Path("z.zone"), text, {"master": MASTER, "standby": v6only})


def test_node_without_ipv6_is_fine_when_no_aaaa_is_marked() -> None:
    text = SOA + "www 300 IN A 192.0.2.10 ; Enable failover\nwww 300 IN AAAA 2001:db8::10\n"
    v4only = Node("blowfish", "blowfish.example.org", "198.51.100.12", None)
    plan = plan_zone(
        "example.org.", Path("z"), text, {"master": v4only, "standby": STANDBY}, "epoch", NOW
    )
    assert plan.changed


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("www IN CNAME web ; Enable failover\n", ["z.zone:3", "CNAME", "only A and AAAA"]),
        ("@ IN MX 10 mail ; Enable failover\n", ["z.zone:3", "MX"]),
        ('txt IN TXT "x" ; Enable failover\n', ["z.zone:3", "TXT"]),
        (
            "www IN A 192.0.2.1 192.0.2.2 ; Enable failover\n",
            ["z.zone:3", "needs one address"],
        ),
        ("www IN A ; Enable failover\n", ["z.zone:3", "needs one address"]),
        ("www IN A ( 192.0.2.1\n", ["z.zone", "never closed"]),
        ("www IN A 192.0.2.1 ) ; Enable failover\n", ["z.zone:3", "')' without '('"]),
        ("@ IN SOA ns1 hostmaster 1 2 3 4 5\n", ["z.zone:3", "second SOA"]),
    ],
)
def test_zone_errors(body: str, fragments: list[str]) -> None:
    with pytest.raises(ZoneError) as e:
        plan_zone("example.org.", Path("z.zone"), SOA + body, TARGETS, "epoch", NOW)
    for fragment in fragments:
        assert fragment in str(e.value)


def test_no_soa() -> None:
    text = "$TTL 300\n@ IN NS ns1\nwww 300 IN A 192.0.2.10 ; Enable failover\n"
    with pytest.raises(ZoneError, match=r"^z\.zone: no SOA record found$"):
        plan_zone("example.org.", Path("z.zone"), text, TARGETS, "epoch", NOW)


def test_unclosed_parenthesis() -> None:
    text = "@ IN SOA ns1 hostmaster (\n 1700000000 3600 900 604800 300\n@ IN NS ns1\n"
    text += "www 300 IN A 192.0.2.10 ; Enable failover\n"
    with pytest.raises(ZoneError, match=r"z\.zone: '\(' is never closed"):
        plan_zone("example.org.", Path("z.zone"), text, TARGETS, "epoch", NOW)


@pytest.mark.parametrize("serial", ["17000000x0", "-1", "4294967296", "1.5"])
def test_serial_not_a_number(serial: str) -> None:
    text = f"@ IN SOA ns1 hostmaster (\n  {serial} ; serial\n  3600 900 604800 300 )\n"
    text += "www 300 IN A 192.0.2.10 ; Enable failover\n"
    with pytest.raises(ZoneError) as e:
        plan_zone("example.org.", Path("z.zone"), text, TARGETS, "epoch", NOW)
    assert "z.zone:2" in str(e.value)
    assert "not a 32-bit number" in str(e.value)
    assert repr(serial) in str(e.value)


def test_soa_without_serial() -> None:
    with pytest.raises(ZoneError, match=r"z\.zone:1: SOA record without a serial"):
        plan_zone("example.org.", Path("z.zone"), "@ IN SOA ns1 hm\n", TARGETS)


# --- serials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "policy", "now", "new"),
    [
        # epoch: now when it is greater than old...
        (1700000000, "epoch", 1800000000, 1800000000),
        (0, "epoch", 1800000000, 1800000000),
        # ... else old + 1 (old in the future, or equal to now)
        (1900000000, "epoch", 1800000000, 1900000001),
        (1800000000, "epoch", 1800000000, 1800000001),
        (2024010101, "epoch", 1800000000, 2024010102),
        # wrap: old + 1 past 2**32 - 1 is 0
        (2**32 - 1, "epoch", 3000000000, 0),
        (2**32 - 1, "increment", 1800000000, 0),
        # RFC 1982: 4294967000 - 1800000000 = 2494967000 > 2**31, so 4294967000 < 1800000000
        (4294967000, "epoch", 1800000000, 1800000000),
        # ... but 3900000000 - 1800000000 = 2100000000 < 2**31: 3900000000 > 1800000000
        (3900000000, "epoch", 1800000000, 3900000001),
        # 2**31 apart: undefined in RFC 1982, old + 1 is always safe
        (0, "epoch", 2**31, 1),
        (2**31 - 1, "epoch", 2**31 - 1 + 2**31 - 1, 2**32 - 2),
        # date (YYYYMMDDnn, UTC): 1800000000 is 2027-01-15 08:00 UTC
        (1700000000, "date", 1800000000, 2027011500),
        (2027011403, "date", 1800000000, 2027011500),
        (2027011500, "date", 1800000000, 2027011501),
        (2027011507, "date", 1800000000, 2027011508),
        (2027011599, "date", 1800000000, 2027011600),
        (2100000000, "date", 1800000000, 2100000001),
        # increment
        (5, "increment", 1800000000, 6),
        (1700000000, "increment", 1800000000, 1700000001),
        (2024010101, "increment", 0, 2024010102),
    ],
)
def test_next_serial(old: int, policy: str, now: int, new: int) -> None:
    assert next_serial(old, policy, now) == new
    assert serial_gt(new, old)


def test_next_serial_is_always_greater_in_serial_arithmetic() -> None:
    for old in (0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1, 1800000000):
        for now in (0, 1, 2**31, 1800000000, 2**32 - 1, 2**32 + 5):
            for policy in ("epoch", "date", "increment"):
                assert serial_gt(next_serial(old, policy, now), old), (old, now, policy)


@pytest.mark.parametrize(
    ("a", "b", "gt"),
    [
        (2, 1, True),
        (1, 2, False),
        (1, 1, False),
        (0, 2**32 - 1, True),
        (2**32 - 1, 0, False),
        (1800000000, 4294967000, True),
        (4294967000, 1800000000, False),
        (2**31, 0, False),  # exactly 2**31 apart: undefined, neither is greater
        (0, 2**31, False),
        (2**31 - 1, 0, True),
        (2**31 + 1, 0, False),
    ],
)
def test_serial_gt(a: int, b: int, gt: bool) -> None:
    assert serial_gt(a, b) is gt


def test_plan_keeps_a_date_serial_ahead_of_now() -> None:
    text = "$ORIGIN example.org.\n$TTL 1h\n@ IN SOA ns. host. 2024010101 1h 15m 1w 1h\n"
    text += "@ IN NS ns.\nwww IN A 192.0.2.10 ; Enable failover\n"
    plan = plan_text(text)
    assert (plan.old_serial, plan.new_serial) == (2024010101, 2024010102)
    assert plan.new_text is not None
    assert "@ IN SOA ns. host. 2024010102 1h 15m 1w 1h\n" in plan.new_text


def test_only_the_serial_would_change() -> None:
    text = SOA + "www 300 IN A 198.51.100.12 ; Enable failover\n"
    plan = plan_text(text)
    assert plan.new_text is None
    assert plan.new_serial == plan.old_serial == 1700000000


# --- diff -----------------------------------------------------------------------------------


def test_diff_has_one_hunk_per_changed_line() -> None:
    path = ZONES / "example.org--seed.zone"
    plan = plan_file(path)
    out = diff(plan)
    lines = out.splitlines()
    assert lines[0] == f"--- {path}"
    assert lines[1] == f"+++ {path} (new)"
    hunks = lines[2:]
    assert len(hunks) == 3 * 7  # the serial and six records
    expected = path.with_suffix(".expected").read_text().split("\n")
    old = path.read_text().split("\n")
    changed = [n for n, (a, b) in enumerate(zip(old, expected, strict=True)) if a != b]
    assert changed == [3, 11, 12, 13, 14, 15, 16]
    for i, n in enumerate(changed):
        assert hunks[3 * i] == f"@@ -{n + 1} +{n + 1} @@"
        assert hunks[3 * i + 1] == "-" + old[n]
        assert hunks[3 * i + 2] == "+" + expected[n]
    assert out.endswith("\n")


def test_diff_applies_with_a_unified_diff_reader() -> None:
    # Apply the diff by its own headers: each hunk replaces exactly the line it names.
    path = ZONES / "example.org--origin.zone"
    plan = plan_file(path)
    lines = plan.old_text.split("\n")
    for m in re.finditer(r"^@@ -(\d+) \+(\d+) @@\n-(.*)\n\+(.*)\n", diff(plan), re.M):
        n = int(m.group(1)) - 1
        assert int(m.group(2)) - 1 == n
        assert lines[n] == m.group(3)
        lines[n] = m.group(4)
    assert "\n".join(lines) == plan.new_text


def test_diff_of_crlf_zone_has_no_carriage_returns() -> None:
    out = diff(plan_file(ZONES / "example.org--crlf.zone"))
    assert "\r" not in out
    assert "-\t300 IN A 192.0.2.10 ; Enable failover\n+\t300 IN A 198.51.100.12 ;" in out


# --- expected / previous answers ------------------------------------------------------------


def test_expected_and_previous_include_unmarked_addresses() -> None:
    text = SOA + (
        "www 300 IN A 192.0.2.10 ; Enable failover\n"
        "www 300 IN A 192.0.2.99\n"
        "www 300 IN AAAA 2001:DB8:0:0::10 ; Enable failover\n"
        "mail 300 IN A 192.0.2.25\n"
    )
    plan = plan_text(text)
    assert dict(plan.previous) == {
        ("www.example.org.", "A"): frozenset({"192.0.2.10", "192.0.2.99"}),
        ("www.example.org.", "AAAA"): frozenset({"2001:db8::10"}),
    }
    assert dict(plan.expected) == {
        ("www.example.org.", "A"): frozenset({"198.51.100.12", "192.0.2.99"}),
        ("www.example.org.", "AAAA"): frozenset({"2001:db8:1::12"}),
    }


def test_expected_and_previous_when_nothing_changes() -> None:
    text = SOA + "www 300 IN A 198.51.100.12 ; Enable failover\nwww 300 IN A 192.0.2.99\n"
    plan = plan_text(text)
    assert plan.new_text is None
    want = {("www.example.org.", "A"): frozenset({"198.51.100.12", "192.0.2.99"})}
    assert dict(plan.previous) == want
    assert dict(plan.expected) == want


def test_no_marked_records_means_no_plan() -> None:
    plan = plan_text(SOA + "www 300 IN A 192.0.2.10\n")
    assert plan.new_text is None
    assert plan.changes == ()


def test_scan_finds_rrtypes_case_insensitively() -> None:
    s = scan(read(ZONES / "example.org--case.zone"), "example.org.")
    assert [(r.owner, r.rrtype, r.address.text) for r in s.marked] == [
        ("www.example.org.", "A", "192.0.2.10"),
        ("www.example.org.", "AAAA", "2001:db8::10"),
        ("standby.example.org.", "AAAA", "2001:db8::20"),
        ("standby.example.org.", "A", "192.0.2.20"),
    ]
