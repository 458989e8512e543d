"""A small, strict DNS wire reader for the answers kissha verifies (A, AAAA, SOA serial).

Why not only dnspython: ``dns.message.from_wire`` costs ~90 us for a bare answer and
~330 us for nsd's usual answer with authority and glue (dnspython 2.9, this project's
machines), and verifying a 1,000-zone switch parses ~6,000 answers. This reader decodes
just the header, the question and the answer section; anything it does not expect makes
it return None and the caller parses that message with dnspython instead. Its results
are checked against dnspython's by a property test (tests/unit/test_wire.py).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPES = {"A": 1, "AAAA": 28, "SOA": 6}
CLASS_IN = 1
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
FLAG_QR = 0x8000
FLAG_AA = 0x0400


@dataclass(frozen=True)
class Answer:
    """What kissha needs from a response."""

    qid: int
    rcode: int
    authoritative: bool
    values: tuple[str, ...]  # addresses (compressed text) or serials (decimal text)


def query(qid: int, name: str, rdtype: str) -> bytes | None:
    """A query for a plain name (no escapes); None when dnspython must build it."""
    if "\\" in name or rdtype not in TYPES:
        return None
    labels = name.rstrip(".").split(".") if name not in (".", "") else []
    out = bytearray(_HEADER.pack(qid, 0, 1, 0, 0, 0))  # RD clear: ask the server itself
    for label in labels:
        raw = label.encode("ascii", "strict") if label.isascii() else None
        if raw is None or not 0 < len(raw) < 64:
            return None
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) - _HEADER.size > 255:
        return None
    out += struct.pack("!HH", TYPES[rdtype], CLASS_IN)
    return bytes(out)


def _skip_name(data: bytes, pos: int) -> int:
    """The offset after a (possibly compressed) name starting at ``pos``."""
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise ValueError("unknown label type")
        pos += 1 + length


def read(data: bytes, question: bytes, rdtype: str) -> Answer | None:
    """Decode a response to ``question`` (the query's wire form without its header).

    Returns None for anything unexpected (truncated, not a response, another question,
    compression in the question, odd record lengths): the caller then uses dnspython.
    """
    try:
        qid, flags, qd, an, _, _ = _HEADER.unpack_from(data, 0)
        if not flags & FLAG_QR or qd != 1 or flags & 0x0200:  # TC: truncated
            return None
        end = _HEADER.size + len(question)
        if data[_HEADER.size : end].lower() != question.lower():
            return None
        want = TYPES[rdtype]
        pos = end
        values: list[str] = []
        for _ in range(an):
            pos = _skip_name(data, pos)
            rtype, rclass, _, rdlen = _RR.unpack_from(data, pos)
            pos += _RR.size
            rdata = data[pos : pos + rdlen]
            if len(rdata) != rdlen:
                return None
            pos += rdlen
            if rtype != want or rclass != CLASS_IN:
                continue
            if want == 1:
                if rdlen != 4:
                    return None
                values.append(str(ipaddress.IPv4Address(rdata)))
            elif want == 28:
                if rdlen != 16:
                    return None
                values.append(ipaddress.IPv6Address(rdata).compressed)
            else:
                at = _skip_name(data, _skip_name(data, pos - rdlen))
                if at + 20 != pos:
                    return None
                values.append(str(struct.unpack_from("!I", data, at)[0]))
        # An RRset is a set: a record repeated on the wire counts once (as in dnspython).
        unique = tuple(dict.fromkeys(values))
        return Answer(qid, flags & 0x000F, bool(flags & FLAG_AA), unique)
    except (IndexError, struct.error, ValueError):
        return None
