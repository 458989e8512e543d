"""Zone syntax read as nsd reads it: $INCLUDE, leading blank owners, escaped names,
strings over two lines, and lines named in every error.

Where it helps, the premise is checked on the real thing: ``nsd-checkzone -p`` prints the
zone as nsd loaded it, and dnspython reads the same text.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.zone
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kissha.core.model import Node
from kissha.core.zonefile import check, plan_zone, scan
from kissha.core.zonename import absolute, first_label
from kissha.errors import ZoneError

MASTER = Node("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8:1::12")
STANDBY = Node("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8:1::11")
TARGETS = {"master": MASTER, "standby": STANDBY}
NOW = 1800000000
HEAD = "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 hostmaster 1700000000 3600 900 604800 300\n"
HEAD += "@ IN NS ns1\nns1 IN A 192.0.2.1\n"  # 5 lines

needs_nsd = pytest.mark.skipif(shutil.which("nsd-checkzone") is None, reason="needs nsd")


def nsd_loads(directory: Path, text: str, zone: str = "example.org") -> dns.zone.Zone:
    """The zone as nsd loads it (``nsd-checkzone -p``), read back with dnspython."""
    (directory / "z.zone").write_text(text)
    proc = subprocess.run(
        ["nsd-checkzone", "-p", zone, "z.zone"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dns.zone.from_text(proc.stdout, origin=zone + ".", relativize=False)


def served(z: dns.zone.Zone, owner: str, rrtype: str = "A") -> set[str]:
    rds = z.get_rdataset(owner, rrtype)
    return set() if rds is None else {rd.address for rd in rds}


def plan(text: str, where: str = "zones/example.org.zone"):
    return plan_zone("example.org.", Path(where), text, TARGETS, "epoch", NOW)


# --- $INCLUDE -------------------------------------------------------------------------------

INCLUDE = HEAD + (
    "www 300 IN A 192.0.2.10 ; Enable failover\n"  # 6
    "$INCLUDE mail.inc\n"  # 7
    "    300 IN A 192.0.2.99\n"  # 8: nsd: mail's, not www's
)


@needs_nsd
def test_nsd_gives_a_blank_owner_after_include_the_included_files_last_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "mail.inc").write_text("mail 300 IN A 192.0.2.5\n")
    z = nsd_loads(tmp_path, INCLUDE)
    assert served(z, "www.example.org.") == {"192.0.2.10"}
    assert served(z, "mail.example.org.") == {"192.0.2.5", "192.0.2.99"}


def test_blank_owner_after_include_is_not_given_the_name_before_it() -> None:
    p = plan(INCLUDE)
    key = ("www.example.org.", "A")
    # What kissha expects nsd to serve for www: the new address only, as nsd does.
    assert p.expected_for(key) == {"198.51.100.12"}
    assert p.previous_for(key) == {"192.0.2.10"}
    assert p.has_include


def test_marked_blank_owner_after_include_is_refused_with_its_line() -> None:
    text = HEAD + "$INCLUDE mail.inc\n    300 IN A 192.0.2.99 ; Enable failover\n"
    with pytest.raises(ZoneError) as e:
        plan(text, "zones/x.zone")
    assert str(e.value).startswith("zones/x.zone:7: marked record without an owner name")
    assert "$INCLUDE" in str(e.value)
    assert any(
        "x.zone:7: " in p and "$INCLUDE" in p
        for p in check(text, "example.org.", "x.zone").problems
    )


def test_a_named_record_after_include_is_fine() -> None:
    text = HEAD + "$INCLUDE mail.inc\nwww 300 IN A 192.0.2.10 ; Enable failover\n"
    text += "    300 IN AAAA 2001:db8::10 ; Enable failover\n"
    p = plan(text)
    assert [(c.owner, c.rrtype, c.new) for c in p.changes] == [
        ("www.example.org.", "A", "198.51.100.12"),
        ("www.example.org.", "AAAA", "2001:db8:1::12"),
    ]


# --- a zone whose first records have no owner -----------------------------------------------

BLANK_FIRST = (
    "$TTL 300\n"
    "    IN SOA ns1 hostmaster 1700000000 3600 900 604800 300\n"
    "    IN NS ns1\n"
    "    300 IN A 192.0.2.10 ; Enable failover\n"
    "ns1 IN A 192.0.2.1\n"
)


@needs_nsd
def test_nsd_and_dnspython_give_leading_blank_owners_the_zone_name(tmp_path: Path) -> None:
    z = nsd_loads(tmp_path, BLANK_FIRST)
    assert served(z, "example.org.") == {"192.0.2.10"}
    zd = dns.zone.from_text(BLANK_FIRST, origin="example.org.", relativize=False)
    assert served(zd, "example.org.") == {"192.0.2.10"}
    # ... even when $ORIGIN moved before the first record.
    moved = "$ORIGIN sub.example.org.\n" + BLANK_FIRST
    assert served(nsd_loads(tmp_path, moved), "example.org.") == {"192.0.2.10"}
    zd = dns.zone.from_text(moved, origin="example.org.", relativize=False)
    assert served(zd, "example.org.") == {"192.0.2.10"}


@pytest.mark.parametrize("prefix", ["", "$ORIGIN sub.example.org.\n"])
def test_leading_blank_owner_is_the_zone_name(prefix: str) -> None:
    p = plan(prefix + BLANK_FIRST)
    line = 3 + prefix.count("\n")
    assert [(c.line, c.owner, c.role, c.new) for c in p.changes] == [
        (line, "example.org.", "master", "198.51.100.12")
    ]
    assert p.old_serial == 1700000000


# --- escaped owner names --------------------------------------------------------------------

ESCAPED = HEAD + (
    "\\115tandby 300 IN A 192.0.2.20 ; Enable failover\n"  # 6: standby
    "www 300 IN A 192.0.2.10 ; Enable failover\n"  # 7
    "\\119ww 300 IN A 192.0.2.11\n"  # 8: the same name as www
    "\\087\\087W 300 IN A 192.0.2.12\n"  # 9: and again
    "standby\\.x 300 IN A 192.0.2.30 ; Enable failover\n"  # 10: one label, not standby
    "st\\097ndby.paul 300 IN AAAA 2001:db8::20 ; Enable failover\n"  # 11: standby
)


@needs_nsd
def test_nsd_reads_escaped_owner_names_as_the_plain_ones(tmp_path: Path) -> None:
    z = nsd_loads(tmp_path, ESCAPED)
    assert served(z, "standby.example.org.") == {"192.0.2.20"}
    assert served(z, "www.example.org.") == {"192.0.2.10", "192.0.2.11", "192.0.2.12"}
    zd = dns.zone.from_text(ESCAPED, relativize=False)
    assert served(zd, "www.example.org.") == {"192.0.2.10", "192.0.2.11", "192.0.2.12"}


def test_escaped_owner_names_are_decoded() -> None:
    s = scan(ESCAPED, "example.org.")
    assert [(r.owner, r.role) for r in s.marked] == [
        ("standby.example.org.", "standby"),
        ("www.example.org.", "master"),
        ("standby\\.x.example.org.", "master"),
        ("standby.paul.example.org.", "standby"),
    ]
    p = plan(ESCAPED)
    key = ("www.example.org.", "A")
    # nsd serves all three www records together: so must the expected answer.
    assert p.previous_for(key) == {"192.0.2.10", "192.0.2.11", "192.0.2.12"}
    assert p.expected_for(key) == {"198.51.100.12", "192.0.2.11", "192.0.2.12"}
    assert p.expected_for(("standby.example.org.", "A")) == {"198.51.100.11"}
    # The canonical text reads back, in dnspython, as the name nsd serves.
    assert dns.name.from_text("standby\\.x.example.org.") == dns.name.from_text(
        "standby\\.x", dns.name.from_text("example.org.")
    )


@pytest.mark.parametrize(
    ("text", "origin", "want"),
    [
        ("www", "example.org.", "www.example.org."),
        ("WWW.Example.ORG.", "x.", "www.example.org."),
        ("@", "example.org.", "example.org."),
        ("\\119ww", "example.org.", "www.example.org."),
        ("\\087ww.", "example.org.", "www."),
        ("\\Www", "example.org.", "www.example.org."),
        ("a\\.b", "example.org.", "a\\.b.example.org."),
        ("a\\\\", "example.org.", "a\\\\.example.org."),
        ("a\\032b", "example.org.", "a\\032b.example.org."),
        ("a\\ b", "example.org.", "a\\032b.example.org."),
        ("\\000", "example.org.", "\\000.example.org."),
        ("a\\.", "example.org.", "a\\..example.org."),
        ("a\\\\.", "example.org.", "a\\\\."),
        ("b\\252cher", "example.org.", "b\\252cher.example.org."),
        ("www", ".", "www."),
        ("\\119", ".", "w."),
        # malformed: nsd-checkzone reports these; kissha keeps the text
        ("a\\999", "example.org.", "a\\999.example.org."),
        ("a..b", "example.org.", "a..b.example.org."),
    ],
)
def test_absolute(text: str, origin: str, want: str) -> None:
    assert absolute(text, origin) == want


def test_first_label() -> None:
    assert first_label("standby.example.org.") == "standby"
    assert first_label("standby\\.x.example.org.") == "standby\\.x"
    assert first_label("a\\\\.b.") == "a\\\\"
    assert first_label(".") == ""


_BYTES = st.binary(min_size=1, max_size=8)


def _write(label: bytes, forms: list[int]) -> str:
    """A label written with each byte plain, as \\X or as \\DDD (and random case).

    Never \\X for a digit: that starts a \\DDD.
    """
    out = []
    for b, form in zip(label, forms, strict=False):
        c = chr(b)
        plain = 0x21 <= b <= 0x7E and c not in '.\\"();@$'
        if form == 0 and plain:
            out.append(c.swapcase() if c.isalpha() else c)
        elif form == 1 and (plain or c in '.\\"();@$') and not c.isdigit():
            out.append("\\" + c)
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(_BYTES, min_size=1, max_size=3),
    forms=st.lists(st.integers(0, 2), min_size=24, max_size=24),
    forms2=st.lists(st.integers(0, 2), min_size=24, max_size=24),
)
def test_one_name_one_text_whatever_the_escapes(
    labels: list[bytes], forms: list[int], forms2: list[int]
) -> None:
    # Two spellings of one name give one text, which dnspython reads back as that name.
    one = ".".join(_write(x, forms[i * 8 :]) for i, x in enumerate(labels))
    two = ".".join(_write(x, forms2[i * 8 :]) for i, x in enumerate(labels))
    origin = dns.name.from_text("example.org.")
    assert dns.name.from_text(one, origin) == dns.name.from_text(two, origin)
    assert absolute(one, "example.org.") == absolute(two, "example.org.")
    assert dns.name.from_text(absolute(one, "example.org.")) == dns.name.from_text(one, origin)


# --- a quoted string over two lines ---------------------------------------------------------

QUOTED = HEAD + (
    't IN TXT "line one\n'  # 6: the string goes on...
    "www IN A 192.0.2.1 ; Enable failover\n"  # 7: ... this is text, not a record
    '(end" ( "more" )\n'  # 8: the string ends
    "www IN A 192.0.2.10 ; Enable failover\n"  # 9
)


@needs_nsd
def test_nsd_reads_a_newline_inside_quotes_as_text(tmp_path: Path) -> None:
    z = nsd_loads(tmp_path, QUOTED)
    assert served(z, "www.example.org.") == {"192.0.2.10"}
    assert len(z.get_rdataset("t.example.org.", "TXT")) == 1


def test_a_quoted_string_over_two_lines_is_one_string() -> None:
    p = plan(QUOTED)
    assert [(c.line + 1, c.old) for c in p.changes] == [(9, "192.0.2.10")]
    assert p.previous_for(("www.example.org.", "A")) == {"192.0.2.10"}
    assert p.new_text is not None
    assert p.new_text.split("\n")[5:8] == QUOTED.split("\n")[5:8]


def test_a_quoted_string_never_closed_names_its_line() -> None:
    text = HEAD + 't IN TXT "line one\nwww IN A 192.0.2.10 ; Enable failover\n'
    with pytest.raises(ZoneError, match=r"^z\.zone:6: a quoted string is never closed$"):
        plan(text, "z.zone")


# --- every problem, each with its line ------------------------------------------------------


def test_check_collects_every_problem_with_its_line() -> None:
    text = (
        "$TTL 300\n"
        "@ IN NS ns1\n"
        "www IN CNAME web ; Enable failover\n"  # 3
        "a IN A 192.0.2.1 192.0.2.2 ; Enable failover\n"  # 4
        "b IN A 192.0.2.1 ) ; Enable failover\n"  # 5
        "c IN A 192.0.2.3 ; Enable failover\n"  # 6: fine
        "d IN TXT ( x\n"  # 7: never closed
    )
    c = check(text, "example.org.", "z.zone")
    assert c.problems == (
        "z.zone:3: '; Enable failover' on a CNAME record: only A and AAAA records can fail over",
        "z.zone:4: marked A record needs one address",
        "z.zone:5: ')' without '('",
        "z.zone:7: '(' is never closed",
        "z.zone:1: no SOA record found",
    )
    assert [r.owner for r in c.scan.marked] == ["c.example.org."]
    # planning stops at the first one
    with pytest.raises(ZoneError, match=r"^z\.zone:3: "):
        plan(text, "z.zone")


def test_check_reports_a_bad_serial_and_a_second_soa() -> None:
    text = "@ IN SOA ns1 hm 1x 1 2 3 4\n@ IN SOA ns1 hm 2 1 2 3 4\n"
    assert check(text, "example.org.", "z.zone").problems == (
        "z.zone:2: a second SOA record",
        "z.zone:1: SOA serial is not a 32-bit number: '1x'",
    )
    for serial in ("+5", "1_000", "\u0661"):
        text = f"@ IN SOA ns1 hm {serial} 1 2 3 4\n"
        assert "not a 32-bit number" in check(text, "example.org.", "z").problems[0]


def test_a_good_zone_has_no_problems() -> None:
    c = check(ESCAPED, "example.org.", "z.zone")
    assert (c.problems, c.warnings) == ((), ())


# --- comments that almost match the mark ----------------------------------------------------

NEAR = HEAD + (
    "a 300 IN A 192.0.2.10 ; Enable  failover\n"  # 6
    "b 300 IN A 192.0.2.10 ; Enable fail-over\n"  # 7
    "c 300 IN A 192.0.2.10 ; Enable failover (standby)\n"  # 8: marked, role by name
    "d 300 IN A 192.0.2.10 ; Enabel failover\n"  # 9
    'e 300 IN TXT "x" ; enable FAIL OVER\n'  # 10: slow path
    "f 300 IN A 192.0.2.10 ; ENABLE FAILOVER\n"  # 11: the mark (any case, as before)
    "g 300 IN A 192.0.2.10 ; Disable failover\n"  # 12: deliberate
    "h 300 IN A 192.0.2.10 ; Enable failover standby\n"  # 13: explicit
    "; Enable fail-over: a comment line of its own marks nothing, and says so by itself\n"
)


def test_near_misses_are_warnings_and_change_nothing() -> None:
    c = check(NEAR, "example.org.", "z.zone")
    assert c.problems == ()
    assert [w.split(": ", 1)[0] for w in c.warnings] == [
        "z.zone:6",
        "z.zone:7",
        "z.zone:8",
        "z.zone:9",
        "z.zone:10",
    ]
    assert "'; Enable  failover' is not the mark '; Enable failover'" in c.warnings[0]
    assert "follows its name (master)" in c.warnings[2]
    assert "'; Enable failover standby'" in c.warnings[2]
    # The mark rule is the one it always was: the near misses are not marked.
    marked = [(r.owner.split(".")[0], r.role) for r in c.scan.marked]
    assert marked == [("c", "master"), ("f", "master"), ("h", "standby")]
    assert [(r.owner.split(".")[0], r.role) for r in scan(NEAR, "example.org.").marked] == marked
