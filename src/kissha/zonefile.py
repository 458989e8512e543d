"""Pure zone-file work: find marked A/AAAA records, rewrite them, bump the serial, diff.

The file is never parsed and printed back: only the text of the marked addresses and of
the SOA serial is replaced, so every other byte (layout, comments, unknown records)
stays as the operator wrote it. dnspython or nsd-checkzone check the result elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kissha.errors import ZoneError
from kissha.model import RRTYPE_FAMILY, Family, Node

MARKER = "Enable failover"
_MARKER_RE = re.compile(r";\s*Enable failover(?:\s+(master|standby))?\b", re.IGNORECASE)
# A token with its span: a quoted string, a comment, a parenthesis, or a word
# (backslash escapes included).
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"?|;[^\n]*|[()]|(?:[^\s;()"\\]|\\.)+')
_TTL_RE = re.compile(r"^(?:\d+[wdhms]?)+$", re.IGNORECASE)
_CLASS_RE = re.compile(r"^(?:IN|CH|CS|HS|CLASS\d+)$", re.IGNORECASE)
_SLOW_CHARS = frozenset('"()\\')
SERIAL_MOD = 2**32


@dataclass(frozen=True)
class Token:
    text: str
    line: int  # 0-based line index
    start: int
    end: int


@dataclass(frozen=True)
class MarkedRecord:
    """A record carrying the failover marker; ``address`` is the token to replace."""

    owner: str
    rrtype: str
    address: Token
    role: str  # "master" or "standby"
    explicit: bool = False

    @property
    def family(self) -> Family:
        return RRTYPE_FAMILY[self.rrtype]


@dataclass(frozen=True)
class ZoneScan:
    """What kissha needs to know about a zone file's text."""

    origin: str
    lines: tuple[str, ...]
    marked: tuple[MarkedRecord, ...]
    serial: Token | None
    # Every A/AAAA address at each (owner, type): the answers a server must give.
    rrsets: Mapping[tuple[str, str], tuple[Token, ...]]
    has_include: bool = False


@dataclass(frozen=True)
class RecordChange:
    line: int
    owner: str
    rrtype: str
    role: str
    old: str
    new: str


@dataclass(frozen=True)
class ZonePlan:
    """The planned rewrite of one zone: ``new_text`` is None when nothing changes."""

    zone: str
    path: Path
    old_text: str
    new_text: str | None
    changes: tuple[RecordChange, ...] = ()
    old_serial: int | None = None
    new_serial: int | None = None
    expected: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    previous: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    has_include: bool = False
    # Digest of the new text with every marked address and the serial blanked out: two
    # files with the same skeleton differ only in what kissha writes (see dnsserver).
    skeleton: str = ""

    @property
    def changed(self) -> bool:
        return self.new_text is not None


def _absolute(name: str, origin: str) -> str:
    if name == "@":
        return origin
    if name.endswith(".") and not name.endswith("\\."):
        return name.lower()
    return f"{name}.{origin}".lower() if origin != "." else f"{name}.".lower()


def _first_label_is_standby(owner: str) -> bool:
    return owner.split(".", 1)[0] == "standby"


def scan(text: str, zone: str, where: str = "") -> ZoneScan:
    """Find the marked records, the serial and the address RRsets of a zone file's text.

    ``zone`` is the zone's name (the initial origin); ``where`` names the file in errors.
    """
    where = where or zone
    origin = zone.lower() if zone.endswith(".") else zone.lower() + "."
    lines = text.split("\n")
    marked: list[MarkedRecord] = []
    rrsets: dict[tuple[str, str], list[Token]] = {}
    serial: Token | None = None
    has_include = False
    last_owner: str | None = None
    pending: list[Token] = []  # tokens of a record spanning lines in parentheses
    depth = 0
    pending_blank = False

    def record(tokens: list[Token], starts_blank: bool, first_line: int) -> None:
        nonlocal last_owner, serial
        words = [t for t in tokens if t.text not in ("(", ")") and t.text[0] != ";"]
        comments = [t.text for t in tokens if t.text[0] == ";"]
        if not words:
            return
        if starts_blank:
            owner = last_owner
            rest = words
        else:
            owner = _absolute(words[0].text, origin)
            last_owner = owner
            rest = words[1:]
        i = 0
        while (
            i < len(rest)
            and i < 2
            and (_TTL_RE.match(rest[i].text) or _CLASS_RE.match(rest[i].text))
        ):
            i += 1
        if i >= len(rest):
            return
        rrtype = rest[i].text.upper()
        rdata = rest[i + 1 :]
        mark = None
        for comment in comments:
            mark = _MARKER_RE.search(comment)
            if mark:
                break
        if rrtype == "SOA":
            if len(rdata) < 3:
                raise ZoneError(f"{where}:{first_line + 1}: SOA record without a serial")
            if serial is not None:
                raise ZoneError(f"{where}:{rdata[2].line + 1}: a second SOA record")
            serial = rdata[2]
        if rrtype in ("A", "AAAA") and owner is not None:
            rrsets.setdefault((owner, rrtype), []).extend(rdata[:1])
        if mark is None:
            return
        if rrtype not in ("A", "AAAA"):
            raise ZoneError(
                f"{where}:{first_line + 1}: '; {MARKER}' on a {rrtype} record: "
                "only A and AAAA records can fail over"
            )
        if owner is None:
            raise ZoneError(f"{where}:{first_line + 1}: marked record has no owner name")
        if len(rdata) != 1 or rdata[0].end < 0:
            raise ZoneError(f"{where}:{first_line + 1}: marked {rrtype} record needs one address")
        explicit = mark.group(1)
        role = (
            explicit.lower()
            if explicit
            else ("standby" if _first_label_is_standby(owner) else "master")
        )
        marked.append(MarkedRecord(owner, rrtype, rdata[0], role, explicit is not None))

    for n, line in enumerate(lines):
        if depth == 0 and not (_SLOW_CHARS.intersection(line)):
            code, sep, comment = line.partition(";")
            words = code.split()
            if not words:
                continue
            if line[0] == "$":
                directive = words[0].upper()
                if directive == "$ORIGIN" and len(words) > 1:
                    origin = _absolute(words[1], origin)
                elif directive == "$INCLUDE":
                    has_include = True
                continue
            interesting = (sep and _MARKER_RE.search(";" + comment)) or any(
                w.upper() == "SOA" for w in words[:5]
            )
            if interesting:
                tokens = [Token(m.group(), n, m.start(), m.end()) for m in _TOKEN_RE.finditer(line)]
            else:
                # Spans are only needed for tokens kissha rewrites; -1 marks "not computed".
                tokens = [Token(w, n, -1, -1) for w in words]
            record(tokens, line[0] in " \t", n)
            continue
        # Slow path: parentheses, quotes or escapes, possibly over several lines.
        tokens = [Token(m.group(), n, m.start(), m.end()) for m in _TOKEN_RE.finditer(line)]
        if depth == 0:
            if not any(t.text[0] != ";" for t in tokens):
                continue
            if line[0] == "$":
                words = [t.text for t in tokens if t.text[0] != ";"]
                if words[0].upper() == "$ORIGIN" and len(words) > 1:
                    origin = _absolute(words[1], origin)
                elif words[0].upper() == "$INCLUDE":
                    has_include = True
                continue
            pending = []
            pending_blank = line[0] in " \t"
            first = n
        for t in tokens:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth < 0:
                    raise ZoneError(f"{where}:{n + 1}: ')' without '('")
        pending.extend(tokens)
        if depth == 0:
            record(pending, pending_blank, first)
            pending = []
    if depth > 0:
        raise ZoneError(f"{where}: '(' is never closed")
    return ZoneScan(
        origin=origin,
        lines=tuple(lines),
        marked=tuple(marked),
        serial=serial,
        rrsets={k: tuple(v) for k, v in rrsets.items()},
        has_include=has_include,
    )


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: is ``a`` greater than ``b``?"""
    return a != b and ((a < b and b - a > 2**31) or (a > b and a - b < 2**31))


def next_serial(old: int, policy: str, now: float) -> int:
    """The next serial: the policy's candidate if it is greater than ``old``, else old + 1."""
    if policy == "epoch":
        candidate = int(now) % SERIAL_MOD
    elif policy == "date":
        candidate = int(time.strftime("%Y%m%d", time.gmtime(now))) * 100
    else:
        candidate = old + 1
    if serial_gt(candidate % SERIAL_MOD, old):
        return candidate % SERIAL_MOD
    return (old + 1) % SERIAL_MOD


def _same_address(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _normal(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def plan_zone(
    zone: str,
    path: Path,
    text: str,
    targets: Mapping[str, Node],
    serial_policy: str = "epoch",
    now: float = 0.0,
) -> ZonePlan:
    """Plan the rewrite of one zone so that its marked records point at ``targets``.

    ``targets`` maps a role ("master", "standby") to a node. A marked record whose node
    has no address of the record's family is an error: never a broken record.
    """
    where = str(path)
    s = scan(text, zone, where)
    if not s.marked:
        return ZonePlan(zone, path, text, None, has_include=s.has_include)
    replace: dict[int, list[tuple[int, int, str]]] = {}
    changes: list[RecordChange] = []
    new_address: dict[Token, str] = {}
    for rec in s.marked:
        node = targets[rec.role]
        address = node.address(rec.family)
        if address is None:
            raise ZoneError(
                f"{where}:{rec.address.line + 1}: {rec.owner} {rec.rrtype} is marked for "
                f"failover but node {node.name} ({rec.role}) has no {rec.family} address"
            )
        new_address[rec.address] = address
        if not _same_address(rec.address.text, address):
            t = rec.address
            replace.setdefault(t.line, []).append((t.start, t.end, address))
            changes.append(RecordChange(t.line, rec.owner, rec.rrtype, rec.role, t.text, address))
    marked_keys = {(rec.owner, rec.rrtype) for rec in s.marked}
    previous = {k: frozenset(_normal(t.text) for t in s.rrsets[k]) for k in marked_keys}
    expected = {
        k: frozenset(_normal(new_address.get(t, t.text)) for t in s.rrsets[k]) for k in marked_keys
    }
    if s.serial is None:
        raise ZoneError(f"{where}: no SOA record found")
    try:
        old_serial = int(s.serial.text)
        if not 0 <= old_serial < SERIAL_MOD:
            raise ValueError
    except ValueError:
        raise ZoneError(
            f"{where}:{s.serial.line + 1}: SOA serial is not a 32-bit number: {s.serial.text!r}"
        ) from None
    if not changes:
        return ZonePlan(
            zone, path, text, None, (), old_serial, old_serial, expected, previous, s.has_include
        )
    new_serial = next_serial(old_serial, serial_policy, now)
    replace.setdefault(s.serial.line, []).append((s.serial.start, s.serial.end, str(new_serial)))
    lines = list(s.lines)
    blanks: dict[int, list[tuple[int, int]]] = {}
    for t in [rec.address for rec in s.marked] + [s.serial]:
        blanks.setdefault(t.line, []).append((t.start, t.end))
    skeleton = _skeleton(lines, blanks)
    for n, spans in replace.items():
        line = lines[n]
        for start, end, value in sorted(spans, reverse=True):
            line = line[:start] + value + line[end:]
        lines[n] = line
    return ZonePlan(
        zone,
        path,
        text,
        "\n".join(lines),
        tuple(changes),
        old_serial,
        new_serial,
        expected,
        previous,
        s.has_include,
        skeleton,
    )


def _skeleton(lines: list[str], blanks: Mapping[int, list[tuple[int, int]]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for n, line in enumerate(lines):
        for start, end in sorted(blanks.get(n, ()), reverse=True):
            line = line[:start] + "\0" + line[end:]
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def diff(plan: ZonePlan) -> str:
    """A unified diff of a plan's changed lines (lines are never added or removed)."""
    if plan.new_text is None:
        return ""
    old = plan.old_text.split("\n")
    new = plan.new_text.split("\n")
    out = [f"--- {plan.path}\n", f"+++ {plan.path} (new)\n"]
    for n, (a, b) in enumerate(zip(old, new, strict=True)):
        if a != b:
            out.append(f"@@ -{n + 1} +{n + 1} @@\n-{a.rstrip(chr(13))}\n+{b.rstrip(chr(13))}\n")
    return "".join(out)
