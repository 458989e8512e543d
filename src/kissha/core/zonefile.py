"""Pure zone-file work: find marked A/AAAA records, rewrite them, bump the serial, diff.

The file is never parsed and printed back: only the text of the marked addresses and of
the SOA serial is replaced, so every other byte (layout, comments, unknown records)
stays as the operator wrote it. dnspython or nsd-checkzone check the result elsewhere.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import ipaddress
import operator
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, compress
from pathlib import Path
from typing import NamedTuple

from kissha.core import zonelint, zonename
from kissha.core.model import RRTYPE_FAMILY, Family, Node
from kissha.errors import ZoneError

MARKER = "Enable failover"
_MARKER_RE = re.compile(r";\s*Enable failover(?:\s+(master|standby))?\b", re.IGNORECASE)
# A token with its span: a quoted string (group 1: its closing quote), a comment, a
# parenthesis, or a word (backslash escapes included).
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*(")?|;[^\n]*|[()]|(?:[^\s;()"\\]|\\.)+')
# The rest of a quoted string that an earlier line opened: nsd reads a newline inside
# quotes as part of the string, so the string (and its record) go on.
_QUOTE_REST_RE = re.compile(r'(?:[^"\\]|\\.)*(")?')
_TTL_RE = re.compile(r"^(?:\d+[wdhms]?)+$", re.IGNORECASE)
_CLASS_RE = re.compile(r"^(?:IN|CH|CS|HS|CLASS\d+)$", re.IGNORECASE)
_SLOW_RE = re.compile(r'["()\\]')
_CLASSES = frozenset({"IN", "CH", "CS", "HS"})
SERIAL_MOD = 2**32


class Token(NamedTuple):
    """A piece of the file's text and where it stands (0-based line, columns)."""

    text: str
    line: int
    start: int
    end: int


class MarkedRecord(NamedTuple):
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
    # Every A/AAAA address at each (owner, type) as (line, text): the answers a server
    # must give for that name.
    rrsets: Mapping[tuple[str, str], tuple[tuple[int, str], ...]]
    has_include: bool = False


class RecordChange(NamedTuple):
    """One marked record's new address (a tuple: a switch makes ~50,000 of them, and a
    tuple is built three times faster than a frozen dataclass)."""

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
    has_include: bool = False
    # Digest of the new text with every marked address and the serial blanked out: two
    # files with the same skeleton differ only in what kissha writes (see kissha.dns).
    skeleton: str = ""
    # For the answer sets below: the layout of ``old_text`` the plan was made from, and
    # the address each marked (role, type) points at once the plan is served.
    source: ZoneLayout | None = None
    targets_by: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # What a later run needs to know about the file this plan leaves (the new text if
    # it changes, else the old): see ZoneSummary.
    summary: ZoneSummary | None = None
    # The text's length when ``old_text`` was not read (an unchanged zone planned from
    # its summary: old_text is "" then).
    text_size: int | None = None
    # Where kissha writes in the text this plan leaves: a later switch splices there.
    layout: ZoneLayout | None = None

    @property
    def changed(self) -> bool:
        return self.new_text is not None

    @property
    def size(self) -> int:
        """The length of the text the server holds once the plan is served."""
        if self.new_text is not None:
            return len(self.new_text)
        return len(self.old_text) if self.text_size is None else self.text_size

    # Computed on demand from ``source``, for one name at a time: verification asks
    # for a sample of names, and building the answer sets of every name of every zone
    # (two dicts per record) cost a third of planning a switch.
    def _addresses(self, key: tuple[str, str]) -> list[tuple[str, str]]:
        """(old text, new text) of every address at (owner, type), a marked one."""
        owner, rrtype = key
        text, targets, src = self.old_text, self.targets_by, self.source
        got = []
        if src is not None:
            i = -1
            with contextlib.suppress(ValueError):  # no spot of this owner after i
                while True:
                    i = src.owners.index(owner, i + 1)  # a C search of ~50 spots
                    kind = src.kinds[i]
                    if _KIND_TYPE[kind] == rrtype:
                        at = src.offsets[i]
                        got.append((text[at : at + src.lengths[i]], targets[KINDS[int(kind)]]))
        if not got:
            raise KeyError(key)  # not a marked name of this zone
        assert src is not None
        got += [(old, old) for ow, t, _, old in src.extra if ow == owner and t == rrtype]
        return got

    def _keys(self) -> list[tuple[str, str]]:
        src = self.source
        if src is None:
            return []
        return list(
            dict.fromkeys(zip(src.owners, map(_KIND_TYPE.__getitem__, src.kinds), strict=True))
        )

    def expected_for(self, key: tuple[str, str]) -> frozenset[str]:
        """The addresses a server must answer for (owner, type) once the plan is served."""
        return self.answers_for(key)[1]

    def previous_for(self, key: tuple[str, str]) -> frozenset[str]:
        """The addresses it answered before."""
        return self.answers_for(key)[0]

    def answers_for(self, key: tuple[str, str]) -> tuple[frozenset[str], frozenset[str]]:
        """(the addresses before, once served) for (owner, type), found in one pass."""
        pairs = self._addresses(key)
        return frozenset(_normal(old) for old, _ in pairs), frozenset(
            _normal(new) for _, new in pairs
        )

    @property
    def expected(self) -> dict[tuple[str, str], frozenset[str]]:
        return {k: self.expected_for(k) for k in self._keys()}

    @property
    def previous(self) -> dict[tuple[str, str], frozenset[str]]:
        return {k: self.previous_for(k) for k in self._keys()}


@dataclass(frozen=True)
class ZoneSummary:
    """What planning needs to know about a zone file that no target would change: its
    serial, its skeleton, and each marked (role, type)'s distinct addresses with the
    first line that holds them (for errors). Small enough to keep for every zone
    between runs (engine/scancache.py), so that a run that changes nothing reads none.
    """

    serial: int | None
    skeleton: str
    has_include: bool
    # (role, rrtype, address text, 0-based line), one per distinct (role, rrtype, text)
    marked: tuple[tuple[str, str, str, int], ...]


class Spot(NamedTuple):
    """A marked address in a text: its character offset and length, its (0-based) line,
    and what the scan knew of its record (one spot of a ZoneLayout, see its ``marked``)."""

    offset: int
    length: int
    line: int
    owner: str
    rrtype: str
    role: str


# A spot's (role, rrtype), one digit in ZoneLayout.kinds.
KINDS: tuple[tuple[str, str], ...] = (
    ("master", "A"),
    ("master", "AAAA"),
    ("standby", "A"),
    ("standby", "AAAA"),
)
_KIND = {k: str(i) for i, k in enumerate(KINDS)}
_KIND_ROLE = {str(i): role for i, (role, _) in enumerate(KINDS)}
_KIND_TYPE = {str(i): rrtype for i, (_, rrtype) in enumerate(KINDS)}
# RecordChange(*fields) without NamedTuple's Python-level __new__, callable by map()
_change = functools.partial(tuple.__new__, RecordChange)


@dataclass(frozen=True)
class ZoneLayout:
    """Where kissha writes in one exact text (engine/scancache.py keeps it with the
    text's SHA-256): the serial's offset and length, each marked address's spot, and the
    unmarked A/AAAA records at marked names as (owner, rrtype, line, address), whose
    addresses a server answers too. With it a switch splices the new addresses into the
    text instead of scanning it again (plan_spliced); ``plan_zone`` plans through the
    same code, so both give the same plan.

    The spots are kept by column, in the order of their offsets (ascending): a switch
    splices ~50,000 of them at 1,000 zones, and whole columns go through ``map``,
    ``zip`` and ``str.join`` (C loops) where one Python loop a spot cost most of
    planning (docs/benchmarks.md, issue 13's fifth round)."""

    serial: tuple[int, int]
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    lines: tuple[int, ...]
    owners: tuple[str, ...]
    kinds: str  # one digit a spot: its index in KINDS
    extra: tuple[tuple[str, str, int, str], ...]
    skeleton: str
    has_include: bool

    @classmethod
    def of(
        cls,
        serial: tuple[int, int],
        spots: Sequence[tuple[int, int, int, str, str, str]],
        extra: tuple[tuple[str, str, int, str], ...],
        skeleton: str,
        has_include: bool,
    ) -> ZoneLayout:
        """A layout from its spots, in any order (Spot or plain tuples of its fields)."""
        columns = list(zip(*sorted(spots), strict=True)) or [()] * 6
        offsets, lengths, lines, owners, rrtypes, roles = columns
        kinds = "".join(map(_KIND.__getitem__, zip(roles, rrtypes, strict=True)))
        return cls(serial, offsets, lengths, lines, owners, kinds, extra, skeleton, has_include)

    @property
    def marked(self) -> tuple[Spot, ...]:
        """The spots one by one (messages, tests): planning works on the columns."""
        return tuple(
            Spot(o, n, line, owner, *KINDS[int(k)][::-1])
            for o, n, line, owner, k in zip(
                self.offsets, self.lengths, self.lines, self.owners, self.kinds, strict=True
            )
        )

    def spans(self) -> tuple[list[int], list[int]]:
        """The starts and ends of every spot with the serial's among them, in order."""
        at, size = self.serial
        i = bisect.bisect_left(self.offsets, at)
        starts = [*self.offsets[:i], at, *self.offsets[i:]]
        ends = list(map(operator.add, starts, [*self.lengths[:i], size, *self.lengths[i:]]))
        return starts, ends


def summarize(
    marked: Sequence[MarkedRecord], addresses: Mapping[int, str]
) -> tuple[tuple[str, str, str, int], ...]:
    """The distinct (role, rrtype, address, first line) of marked records, with the
    address of each record's line taken from ``addresses`` when it is there."""
    seen: dict[tuple[str, str, str], int] = {}
    for r in marked:
        text = addresses.get(r.address.line, r.address.text)
        seen.setdefault((r.role, r.rrtype, text), r.address.line)
    return tuple((role, rrtype, text, line) for (role, rrtype, text), line in seen.items())


def plan_unchanged(
    zone: str, path: Path, summary: ZoneSummary, size: int, targets: Mapping[str, Node]
) -> ZonePlan | None:
    """The plan of a zone whose summary says it already points at ``targets`` (without
    reading the file), or None: then it must be planned from its text (it changes, or
    it cannot be planned and the full plan says why, naming the line)."""
    if summary.marked and summary.serial is None:
        return None
    for role, rrtype, text, _ in summary.marked:
        address = targets[role].address(RRTYPE_FAMILY[rrtype])
        if address is None or not _same_address(text, address):
            return None
    if not summary.marked:
        return ZonePlan(
            zone,
            path,
            "",
            None,
            has_include=summary.has_include,
            summary=summary,
            text_size=size,
        )
    return ZonePlan(
        zone,
        path,
        "",
        None,
        (),
        summary.serial,
        summary.serial,
        summary.has_include,
        summary.skeleton,
        summary=summary,
        text_size=size,
    )


@functools.lru_cache(maxsize=1024)  # a zone repeats a few: 300, IN, 4h...
def _is_ttl_or_class(word: str) -> bool:
    if word[0].isdigit():
        return _TTL_RE.match(word) is not None
    return word.upper() in _CLASSES or _CLASS_RE.match(word) is not None


class _Scanner:
    """One pass over a zone file's lines; see ``scan`` and ``check``.

    ``strict``: the first problem raises ZoneError (planning); otherwise every problem is
    collected with its line and the scan goes on (check-config). ``lint`` also collects
    comments that almost match the mark.
    """

    def __init__(self, zone: str, where: str, strict: bool = True, lint: bool = False) -> None:
        self.where = where
        self.origin = zone.lower() if zone.endswith(".") else zone.lower() + "."
        self.strict = strict
        self.lint = lint
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.marked: list[MarkedRecord] = []
        self.rrsets: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.serial: Token | None = None
        self.has_include = False
        # nsd and dnspython give the zone's name to leading records without an owner.
        # None: unknown, right after $INCLUDE (nsd takes the included file's last owner).
        self.last_owner: str | None = self.origin

    def problem(self, line: int, message: str) -> None:
        text = f"{self.where}:{line + 1}: {message}"
        if self.strict:
            raise ZoneError(text)
        self.problems.append(text)

    def directive(self, words: list[str]) -> None:
        name = words[0].upper()
        if name == "$ORIGIN" and len(words) > 1:
            self.origin = zonename.absolute(words[1], self.origin)
        elif name == "$INCLUDE":
            self.has_include = True
            self.last_owner = None

    def owner(self, blank: bool, first: str) -> str | None:
        if blank:
            return self.last_owner
        self.last_owner = zonename.absolute(first, self.origin)
        return self.last_owner

    def mark(
        self, owner: str | None, rrtype: str, rdata: list[Token], mark: re.Match[str], line: int
    ) -> None:
        if rrtype not in ("A", "AAAA"):
            self.problem(
                line, f"'; {MARKER}' on a {rrtype} record: only A and AAAA records can fail over"
            )
            return
        if owner is None:
            self.problem(
                line,
                "marked record without an owner name right after $INCLUDE: nsd gives it the "
                "last owner of the included file, which kissha does not read; write the name",
            )
            return
        if len(rdata) != 1:
            self.problem(line, f"marked {rrtype} record needs one address")
            return
        explicit = mark.group(1)
        if explicit:
            role = explicit.lower()
        else:
            role = "standby" if zonename.first_label(owner) == "standby" else "master"
        self.marked.append(MarkedRecord(owner, rrtype, rdata[0], role, explicit is not None))

    def comment(self, text: str, owner: str | None, line: int) -> re.Match[str] | None:
        """The mark in a record's comment, if any; with ``lint``, note a near miss."""
        mark = _MARKER_RE.search(text)
        if self.lint:
            why = zonelint.near_miss(text, mark, owner)
            if why:
                self.warnings.append(f"{self.where}:{line + 1}: {why}")
        return mark

    def fast(self, n: int, line: str) -> None:
        """A line without quotes, parentheses or escapes: whitespace splits it exactly."""
        code, sep, comment = line.partition(";")
        words = code.split()
        if not words:
            return
        if line[0] == "$":
            self.directive(words)
            return
        blank = line[0] in " \t"
        owner = self.owner(blank, words[0])
        i = 0 if blank else 1
        j = i
        while j < len(words) and j - i < 2 and _is_ttl_or_class(words[j]):
            j += 1
        if j >= len(words):
            return
        rrtype = words[j].upper()
        if rrtype == "SOA":
            self.record(self.tokens(n, line)[0], blank, n)  # spans needed for the serial
            return
        if (rrtype == "A" or rrtype == "AAAA") and owner is not None and j + 1 < len(words):
            self.rrsets.setdefault((owner, rrtype), []).append((n, words[j + 1]))
        mark = self.comment(";" + comment, owner, n) if sep else None
        if mark is not None:
            rest = words[j + 1 :]
            if len(rest) == 1:
                # The address is the last word before the comment: its span, no tokenizer.
                end = len(code.rstrip())
                rdata = [Token(rest[0], n, end - len(rest[0]), end)]
            else:
                rdata = [Token(w, n, -1, -1) for w in rest]  # mark() rejects these
            self.mark(owner, rrtype, rdata, mark, n)

    @staticmethod
    def tokens(n: int, line: str, in_quote: bool = False) -> tuple[list[Token], bool]:
        """The tokens of a line, and whether it ends inside a quoted string.

        ``in_quote``: an earlier line opened a string; its rest comes first, as a token
        whose text gets the opening quote back (it is never rewritten, only classified).
        """
        out: list[Token] = []
        pos = 0
        if in_quote:
            m = _QUOTE_REST_RE.match(line)
            assert m is not None  # the pattern matches the empty string
            out.append(Token('"' + m.group(), n, 0, m.end()))
            if m.group(1) is None:
                return out, True
            pos = m.end()
        open_quote = False
        for m in _TOKEN_RE.finditer(line, pos):
            text = m.group()
            out.append(Token(text, n, m.start(), m.end()))
            open_quote = text[0] == '"' and m.group(1) is None
        return out, open_quote

    def record(self, tokens: list[Token], blank: bool, first_line: int) -> None:
        """A record from its tokens (with spans), over one line or several."""
        words = [t for t in tokens if t.text not in ("(", ")") and t.text[0] != ";"]
        if not words:
            return
        owner = self.owner(blank, words[0].text)
        rest = words if blank else words[1:]
        i = 0
        while i < len(rest) and i < 2 and _is_ttl_or_class(rest[i].text):
            i += 1
        if i >= len(rest):
            return
        rrtype = rest[i].text.upper()
        rdata = rest[i + 1 :]
        if rrtype == "SOA":
            if len(rdata) < 3:
                self.problem(first_line, "SOA record without a serial")
            elif self.serial is not None:
                self.problem(rdata[2].line, "a second SOA record")
            else:
                self.serial = rdata[2]
        if rrtype in ("A", "AAAA") and owner is not None and rdata:
            self.rrsets.setdefault((owner, rrtype), []).append((rdata[0].line, rdata[0].text))
        marked = False
        for t in tokens:
            if t.text[0] == ";":
                mark = self.comment(t.text, owner, t.line)
                if mark and not marked:
                    marked = True
                    self.mark(owner, rrtype, rdata, mark, first_line)
                    if not self.lint:
                        return


def _scan(sc: _Scanner, text: str) -> ZoneScan:
    lines = text.split("\n")
    pending: list[Token] = []  # tokens of a record spanning lines (parentheses, quotes)
    pending_blank = False
    first = 0  # the line where the pending record starts
    depth = 0
    in_quote = False
    quote_line = 0  # the line where the open string starts
    for n, line in enumerate(lines):
        if depth == 0 and not in_quote and _SLOW_RE.search(line) is None:
            sc.fast(n, line)
            continue
        # Slow path: parentheses, quotes or escapes, possibly over several lines.
        tokens, ends_in_quote = sc.tokens(n, line, in_quote)
        if depth == 0 and not in_quote:
            words = [t.text for t in tokens if t.text[0] != ";"]
            if not words:
                continue
            if line[0] == "$":
                sc.directive(words)
                continue
            pending = []
            pending_blank = line[0] in " \t"
            first = n
        if ends_in_quote and not in_quote:
            quote_line = n
        in_quote = ends_in_quote
        unbalanced = False
        for t in tokens:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth < 0:
                    sc.problem(n, "')' without '('")
                    unbalanced = True
                    break
        if unbalanced:  # collecting: drop this record, read on from the next line
            depth, in_quote, pending = 0, False, []
            continue
        pending.extend(tokens)
        if depth == 0 and not in_quote:
            sc.record(pending, pending_blank, first)
            pending = []
    if in_quote:
        sc.problem(quote_line, "a quoted string is never closed")
    elif depth > 0:
        sc.problem(first, "'(' is never closed")
    return ZoneScan(
        origin=sc.origin,
        lines=tuple(lines),
        marked=tuple(sc.marked),
        serial=sc.serial,
        rrsets={k: tuple(v) for k, v in sc.rrsets.items()},
        has_include=sc.has_include,
    )


def scan(text: str, zone: str, where: str = "") -> ZoneScan:
    """Find the marked records, the serial and the address RRsets of a zone file's text.

    ``zone`` is the zone's name (the initial origin); ``where`` names the file in errors.
    Raises ZoneError, naming the file and line, at the first problem.
    """
    return _scan(_Scanner(zone, where or zone), text)


@dataclass(frozen=True)
class ZoneCheck:
    """Every problem of a zone file's text (each ``file:line: ...``), and the warnings."""

    scan: ZoneScan
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def check(text: str, zone: str, where: str = "") -> ZoneCheck:
    """Like ``scan``, but collect every problem instead of stopping at the first.

    Also what planning would refuse later (no SOA, a serial that is not a number) and,
    as warnings, comments on records that almost match the mark.
    """
    sc = _Scanner(zone, where or zone, strict=False, lint=True)
    s = _scan(sc, text)
    if s.serial is None:
        sc.problems.append(no_soa(sc.where))
    elif _serial_value(s.serial) is None:
        sc.problems.append(_bad_serial(sc.where, s.serial))
    return ZoneCheck(s, tuple(sc.problems), tuple(sc.warnings))


def no_soa(where: str) -> str:
    # nsd refuses the zone; line 1 is where an editor should look (there is no SOA line).
    return f"{where}:1: no SOA record found"


def _serial_value(token: Token) -> int | None:
    # ASCII digits only: int() would also take "+5", "1_000" and other scripts' digits.
    if not (token.text.isascii() and token.text.isdigit()):
        return None
    value = int(token.text)
    return value if value < SERIAL_MOD else None


def _bad_serial(where: str, token: Token) -> str:
    return f"{where}:{token.line + 1}: SOA serial is not a 32-bit number: {token.text!r}"


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
    return a == b or _normal(a) == _normal(b)


@functools.lru_cache(maxsize=4096)
def _normal(address: str) -> str:
    """The canonical text of an address (cached: zones repeat a few node addresses)."""
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
        summary = ZoneSummary(None, "", s.has_include, ())
        return ZonePlan(zone, path, text, None, has_include=s.has_include, summary=summary)
    for rec in s.marked:  # this error first, as it names the record's own line
        node = targets[rec.role]
        if node.address(rec.family) is None:
            raise ZoneError(
                f"{where}:{rec.address.line + 1}: {rec.owner} {rec.rrtype} is marked for "
                f"failover but node {node.name} ({rec.role}) has no {rec.family} address"
            )
    if s.serial is None:
        raise ZoneError(no_soa(where))
    if _serial_value(s.serial) is None:
        raise ZoneError(_bad_serial(where, s.serial))
    starts = [0]
    for line in s.lines:
        starts.append(starts[-1] + len(line) + 1)
    # (offset, length, line, owner, rrtype, role): Spot's fields, plain tuples
    spots = [
        (starts[a.line] + a.start, a.end - a.start, a.line, r.owner, r.rrtype, r.role)
        for r in s.marked
        for a in (r.address,)
    ]
    marked_lines = {(owner, rrtype, line) for _, _, line, owner, rrtype, _ in spots}
    extra = tuple(
        (owner, rrtype, n, address)
        for owner, rrtype in dict.fromkeys((p[3], p[4]) for p in spots)
        for n, address in s.rrsets[(owner, rrtype)]
        if (owner, rrtype, n) not in marked_lines
    )
    serial = (starts[s.serial.line] + s.serial.start, s.serial.end - s.serial.start)
    layout = ZoneLayout.of(serial, spots, extra, "", s.has_include)
    layout = replace(layout, skeleton=_skeleton(text, *layout.spans()))
    return plan_spliced(zone, path, text, layout, targets, serial_policy, now)


def plan_spliced(
    zone: str,
    path: Path,
    text: str,
    layout: ZoneLayout,
    targets: Mapping[str, Node],
    serial_policy: str = "epoch",
    now: float = 0.0,
) -> ZonePlan:
    """Plan like ``plan_zone`` from the text's known layout, without scanning it: the
    caller vouches that ``layout`` is this text's (engine/scancache.py compares the
    SHA-256 of the file with the one the layout was recorded for). The new text is the
    old one with the new addresses and serial spliced in; the plan carries the new
    text's layout (later spots move by what earlier splices added).

    Column by column (see ZoneLayout): every step over the spots is a ``map``, ``zip``
    or ``compress``, no Python loop a spot."""
    kinds = layout.kinds
    table: dict[str, str] = {}  # kind -> the target address
    targets_by: dict[tuple[str, str], str] = {}  # (role, rrtype) -> the target address
    for k in sorted(set(kinds), key=kinds.index):  # the first spot's error first
        role, rrtype = KINDS[int(k)]
        node = targets[role]
        family = RRTYPE_FAMILY[rrtype]
        address = node.address(family)
        if address is None:
            i = kinds.index(k)
            raise ZoneError(
                f"{path}:{layout.lines[i] + 1}: {layout.owners[i]} {rrtype} is marked for "
                f"failover but node {node.name} ({role}) has no {family} address"
            )
        table[k] = targets_by[(role, rrtype)] = address
    offsets = layout.offsets
    ends = list(map(operator.add, offsets, layout.lengths))
    olds = list(map(text.__getitem__, map(slice, offsets, ends)))
    # What each spot holds once served: the target, or its old text if that is the
    # same address written another way (each distinct pair compared once: a zone
    # repeats a few addresses).
    pairs = list(zip(olds, map(table.__getitem__, kinds), strict=True))
    keep = {pair: _kept(*pair) for pair in set(pairs)}
    values = list(map(keep.__getitem__, pairs))
    serial_at, serial_length = layout.serial
    old_serial = int(text[serial_at : serial_at + serial_length])
    seen = _first_lines(kinds, values, layout.lines)
    if values == olds:
        summary = ZoneSummary(old_serial, layout.skeleton, layout.has_include, seen)
        return ZonePlan(
            zone,
            path,
            text,
            None,
            (),
            old_serial,
            old_serial,
            layout.has_include,
            layout.skeleton,
            layout,
            targets_by,
            summary,
            layout=layout,
        )
    fields = zip(
        layout.lines,
        layout.owners,
        map(_KIND_TYPE.__getitem__, kinds),
        map(_KIND_ROLE.__getitem__, kinds),
        olds,
        values,
        strict=True,
    )
    changes = tuple(map(_change, compress(fields, map(operator.ne, values, olds))))
    new_serial = next_serial(old_serial, serial_policy, now)
    # The serial among the spots, in text order: pieces of the old text between them.
    i = bisect.bisect_left(offsets, serial_at)
    starts, stops = layout.spans()
    words = [*values[:i], str(new_serial), *values[i:]]
    pieces = list(map(text.__getitem__, map(slice, [0, *stops], [*starts, len(text)])))
    out = pieces + words  # the right size; interleaved below
    out[0::2], out[1::2] = pieces, words
    # Where each word lands in the new text: after the pieces and words before it.
    sizes = list(map(len, words))
    moved = list(accumulate(map(operator.add, map(len, pieces), [0, *sizes])))
    new_layout = ZoneLayout(
        (moved[i], sizes[i]),
        (*moved[:i], *moved[i + 1 : -1]),
        (*sizes[:i], *sizes[i + 1 :]),
        layout.lines,
        layout.owners,
        kinds,
        layout.extra,
        layout.skeleton,
        layout.has_include,
    )
    summary = ZoneSummary(new_serial, layout.skeleton, layout.has_include, seen)
    return ZonePlan(
        zone,
        path,
        text,
        "".join(out),
        changes,
        old_serial,
        new_serial,
        layout.has_include,
        layout.skeleton,
        layout,
        targets_by,
        summary,
        layout=new_layout,
    )


def _kept(old: str, target: str) -> str:
    return old if old == target or _same_address(old, target) else target


def _first_lines(
    kinds: str, values: Sequence[str], lines: Sequence[int]
) -> tuple[tuple[str, str, str, int], ...]:
    """The summary's distinct (role, rrtype, address) with the first line holding each,
    in the order they first appear."""
    keys = list(zip(kinds, values, strict=True))
    # Built backwards, so that a key's last write is its first line.
    first = dict(zip(reversed(keys), reversed(lines), strict=True))
    return tuple((*KINDS[int(k)], v, first[(k, v)]) for k, v in dict.fromkeys(keys))


_BEFORE = frozenset(" \t(")
_AFTER = frozenset(" \t;)\r\n")
_INSIDE = frozenset(' \t\r\n;()"')


def fits(text: str, layout: ZoneLayout) -> bool:
    """Whether ``layout`` is ``text``'s: each spot holds one word (the serial one of
    ASCII digits), and the text with the spots blanked out has the layout's skeleton,
    the digest a full scan computed. Then the text is the scanned one with other words
    in the spots, and a scan would find the same spots: splicing there is what
    ``plan_zone`` would write, and the skeleton vouches for validation as before.

    A text holding NUL is never vouched for: the blank is NUL, so a piece holding one
    could hide a spot moved within it. Column by column, as plan_spliced."""
    size = len(text)
    n = len(layout.offsets)
    if len(layout.lengths) != n or "\0" in text:
        return False
    starts, stops = layout.spans()
    if starts[0] <= 0 or stops[-1] > size:
        return False
    # Each spot holds something and ends before the next starts: in order, apart.
    if min(map(operator.sub, stops, starts)) <= 0 or not all(map(operator.le, stops, starts[1:])):
        return False
    if not _BEFORE.issuperset(map(text.__getitem__, map((-1).__add__, starts))):
        return False
    inner = stops if stops[-1] < size else stops[:-1]
    if not _AFTER.issuperset(map(text.__getitem__, inner)):
        return False
    if not _INSIDE.isdisjoint("".join(map(text.__getitem__, map(slice, starts, stops)))):
        return False
    serial = text[layout.serial[0] : layout.serial[0] + layout.serial[1]]
    if not (serial.isascii() and serial.isdigit() and int(serial) < SERIAL_MOD):
        return False
    return _skeleton(text, starts, stops) == layout.skeleton


def _skeleton(text: str, starts: Sequence[int], stops: Sequence[int]) -> str:
    """The digest of ``text`` with each span (start, stop) blanked out to one NUL: the
    marked addresses and the serial. A scan (plan_zone) and ``fits`` compute it here
    alike, and the old and the new text of a plan have the same one by construction."""
    import hashlib  # here: commands that never plan do not pay for it

    pieces = map(text.__getitem__, map(slice, [0, *stops], [*starts, len(text)]))
    blanked = "\0".join(pieces).encode("utf-8", "surrogateescape")
    return hashlib.sha256(blanked).hexdigest()


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
