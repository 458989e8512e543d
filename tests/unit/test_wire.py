"""kissha's wire reader agrees with dnspython on every answer dnspython can build."""

from __future__ import annotations

import ipaddress

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from kissha.dns import wire

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
names = st.lists(label, min_size=1, max_size=4).map(lambda ls: ".".join(ls) + ".")
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bytes, str, dns.message.Message]:
    qname = draw(names)
    rdtype = draw(st.sampled_from(["A", "AAAA", "SOA"]))
    query = wire.query(draw(st.integers(0, 65535)), qname, rdtype)
    assert query is not None
    q = dns.message.from_wire(query)
    r = dns.message.make_response(q)
    if draw(st.booleans()):
        r.flags |= dns.flags.AA
    r.set_rcode(draw(st.sampled_from([dns.rcode.NOERROR, dns.rcode.SERVFAIL, dns.rcode.REFUSED])))
    soa_owners = set()
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["A", "AAAA", "SOA", "CNAME", "TXT"]))
        owner = draw(st.sampled_from([qname, draw(names)]))
        if kind == "A":
            rdata = draw(ipv4)
        elif kind == "AAAA":
            rdata = draw(ipv6)
        elif kind == "SOA":
            if soa_owners:
                continue  # one SOA per answer: two are tested below
            soa_owners.add(owner)
            serial = draw(st.integers(0, 2**32 - 1))
            rdata = f"{draw(names)} {draw(names)} {serial} 3600 900 604800 300"
        elif kind == "CNAME":
            rdata = draw(names)
        else:
            rdata = '"v=spf1 -all ; Enable failover"'
        r.answer.append(dns.rrset.from_text(owner, 300, "IN", kind, rdata))
    for _ in range(draw(st.integers(0, 2))):
        r.authority.append(dns.rrset.from_text(qname, 300, "IN", "NS", draw(names)))
    for _ in range(draw(st.integers(0, 2))):
        r.additional.append(dns.rrset.from_text(draw(names), 300, "IN", "A", draw(ipv4)))
    return r.to_wire(), query[12:], rdtype, r


@settings(max_examples=300, deadline=None)
@given(responses())
def test_reader_agrees_with_dnspython(case: tuple[bytes, bytes, str, dns.message.Message]) -> None:
    data, question, rdtype, _message = case
    got = wire.read(data, question, rdtype)
    assert got is not None
    parsed = dns.message.from_wire(data)
    want = []
    for rrset in parsed.answer:
        if rrset.rdtype != dns.rdatatype.from_text(rdtype):
            continue
        for rd in rrset:
            want.append(
                str(rd.serial) if rdtype == "SOA" else ipaddress.ip_address(rd.address).compressed
            )
    if rdtype == "SOA":
        assert list(got.values) == want
    else:  # addresses are judged as sets (an RRset is a set)
        assert set(got.values) == set(want)
    assert got.rcode == parsed.rcode()
    assert got.authoritative == bool(parsed.flags & dns.flags.AA)
    assert got.qid == parsed.id


def test_reader_declines_what_it_does_not_expect() -> None:
    query = wire.query(7, "www.example.org.", "A")
    assert query is not None
    q = dns.message.from_wire(query)
    r = dns.message.make_response(q)
    data = r.to_wire()
    assert (
        wire.read(data[:-1] if len(data) > 12 + len(query[12:]) else data[:10], query[12:], "A")
        is None
    )
    other = wire.query(7, "mail.example.org.", "A")
    assert other is not None
    assert wire.read(data, other[12:], "A") is None  # an answer to another question
    assert wire.read(query, query[12:], "A") is None  # a query, not a response
    two = wire.query(1, "example.org.", "SOA")
    assert two is not None
    r2 = dns.message.make_response(dns.message.from_wire(two))
    for serial in (1, 2):
        soa = f"ns. host. {serial} 3600 900 604800 300"
        r2.answer.append(dns.rrset.from_text("example.org.", 300, "IN", "SOA", soa))
    # two SOA records: both reported, so the check for one serial fails (conservative)
    got2 = wire.read(r2.to_wire(), two[12:], "SOA")
    assert got2 is not None and got2.values == ("1", "2")
    truncated = bytearray(data)
    truncated[2] |= 0x02  # TC
    assert wire.read(bytes(truncated), query[12:], "A") is None


def test_query_matches_dnspython() -> None:
    for name, rdtype in [("www.example.org.", "A"), ("example.org", "SOA"), ("X.Y.", "AAAA")]:
        ours = wire.query(0x1234, name, rdtype)
        assert ours is not None
        m = dns.message.from_wire(ours)
        assert m.id == 0x1234
        assert m.question[0].name == dns.name.from_text(name)
        assert m.question[0].rdtype == dns.rdatatype.from_text(rdtype)
        assert not m.flags & dns.flags.RD
    assert wire.query(1, "we\\.ird.example.", "A") is None  # escapes: dnspython builds it
