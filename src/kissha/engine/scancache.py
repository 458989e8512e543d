"""state_dir/scans.json: what each zone file's last scan found, so that a run that
changes nothing stats the files instead of reading and tokenising them all.

An entry is trusted only while the file's stat is the one recorded: inode, size,
mtime and ctime in nanoseconds (ctime moves on every write and cannot be set back by
``touch``). A file written so soon before it was recorded that a later write could
leave the same timestamps (within RACY_NS, the way git guards its index) is read and
its SHA-256 compared instead, and recorded anew. The cache is kissha's own file: it is
shape-checked when read and set aside when damaged (see kissha.ownfile); losing it
only costs one run a full scan.

state_dir/layouts.json keeps, apart, where kissha writes in each file (the serial's and
each marked address's offsets, core.zonefile.ZoneLayout) under the SHA-256 of the text
it describes: a switch reads the file, compares its digest and splices the new addresses
in, without scanning it again. It is read only when a zone must be planned from its text
(a switch, a hand edit), never by a run whose files all match their scan, and each
entry is shape-checked when it is used (a bad one is only a full scan).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha import ownfile as of
from kissha.core.zonefile import ZoneLayout, ZoneSummary

NAME = "scans.json"
LAYOUTS = "layouts.json"
VERSION = 1
# layouts.json: 2 keeps each file's spots by column (ZoneLayout); a file of version 1
# (spots one by one, kissha before 2026-11-30's fifth round) is only no layout yet.
LAYOUTS_VERSION = 2
# Timestamps closer than this to the moment an entry was recorded are not trusted
# alone: file systems keep them in ticks (a few ms on Linux, 2 s on FAT).
RACY_NS = 2_000_000_000
_ROLES = ("master", "standby")
_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class Entry:
    zone: str
    stat: tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
    recorded_ns: int
    digest: str
    summary: ZoneSummary


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ScanCache:
    """The entries by file path; ``fresh`` says whether the file's stat still vouches
    for an entry, ``put`` records one, ``save`` writes the file if anything changed."""

    def __init__(self, state_dir: Path, entries: dict[str, Entry], warning: str | None) -> None:
        self.path = state_dir / NAME
        self.entries = entries
        self.warning = warning
        self.dirty = warning is not None
        self.readonly = False
        # path -> [zone, digest, layout] (the layout as read until used); None: not read
        self._layouts: dict[str, list[Any]] | None = None
        self._layouts_dirty = False
        self._layouts_warning: str | None = None
        # The owners column as layouts.json has it (relative), by the identity of the
        # absolute column read from it: a switch's new layout carries that same column,
        # and writing it back then costs no call a spot (~50,000 at 1,000 zones).
        self._relative: dict[int, tuple[tuple[str, ...], list[str]]] = {}

    @classmethod
    def load(cls, state_dir: Path, readonly: bool = False) -> ScanCache:
        path = state_dir / NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(state_dir, {}, None)
        except OSError as exc:
            return cls(state_dir, {}, f"{path}: cannot read ({exc.strerror or exc}); ignored")
        try:
            entries = _parse(raw)
        except of.Bad as exc:
            if readonly:
                return cls(state_dir, {}, None)
            return cls(state_dir, {}, f"{path}: {exc}; {of.set_aside(path)}")
        cache = cls(state_dir, entries, None)
        cache.readonly = readonly
        return cache

    def fresh(self, path: Path, zone: str, st: os.stat_result) -> Entry | None:
        """The entry for ``path`` if the file is still what it recorded, else None."""
        e = self.recorded(path, zone, st)
        return e if e is not None and self.confirmed(path, zone, st, e) else None

    def recorded(self, path: Path, zone: str, st: os.stat_result) -> Entry | None:
        """The entry for ``path`` if the file's stat is the one it recorded; the caller
        uses it only once ``confirmed`` (a racy entry costs a read), and need not when
        the entry says the zone changes anyway (then the file is read to plan it)."""
        e = self.entries.get(str(path))
        if e is None or e.zone != zone or e.stat != stat_key(st):
            return None
        return e

    def confirmed(self, path: Path, zone: str, st: os.stat_result, e: Entry) -> bool:
        """Whether ``recorded``'s entry ``e`` vouches for the file: its timestamps lie
        well before the recording, or else its bytes still have the recorded digest."""
        if max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS < e.recorded_ns:
            return True
        # Racy: the same stat could hide a write made right after the recording.
        try:
            data = path.read_bytes()
        except OSError:
            return False
        if digest(data) != e.digest:
            return False
        self.put(path, zone, st, e.digest, e.summary)  # recorded now: no longer racy
        return True

    def put(
        self,
        path: Path,
        zone: str,
        st: os.stat_result,
        sha: str,
        summary: ZoneSummary,
        layout: ZoneLayout | None = None,
    ) -> None:
        self.entries[str(path)] = Entry(zone, stat_key(st), time.time_ns(), sha, summary)
        self.dirty = True
        if layout is not None:
            self.put_layout(path, zone, sha, layout)

    # -- layouts.json ---------------------------------------------------------------------

    def layout(self, path: Path, zone: str, sha: str) -> ZoneLayout | None:
        """The layout recorded for ``path`` if it was recorded for this zone and for the
        text whose SHA-256 is ``sha``, else None."""
        item = self._layout_entries().get(str(path))
        if item is None or item[0] != zone or item[1] != sha:
            return None
        if isinstance(item[2], ZoneLayout):
            return item[2]
        raw = item[2]
        try:
            layout = _layout(raw, f"{LAYOUTS}: zones.{path}", zone)
        except of.Bad:
            return None  # a full scan, which records a good one
        item[2] = layout
        self._relative[id(layout.owners)] = (layout.owners, raw[6])
        return layout

    def put_layout(self, path: Path, zone: str, sha: str, layout: ZoneLayout) -> None:
        self._layout_entries()[str(path)] = [zone, sha, layout]
        self._layouts_dirty = True

    def _layout_entries(self) -> dict[str, list[Any]]:
        if self._layouts is not None:
            return self._layouts
        self._layouts = {}
        path = self.path.with_name(LAYOUTS)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return self._layouts
        except OSError as exc:
            self._layouts_warning = f"{path}: cannot read ({exc.strerror or exc}); ignored"
            return self._layouts
        try:
            data = of.obj(of.parse(raw), "")
            if data.get("version") == 1:
                return self._layouts  # the older shape: a full scan records the new one
            if data.get("version") != LAYOUTS_VERSION:
                raise of.Bad(f"version: not {LAYOUTS_VERSION}")
            for key, v in of.obj(data.get("zones"), "zones").items():
                item = of.seq(v, f"zones.{key}")
                if len(item) != 3 or not all(isinstance(x, str) for x in item[:2]):
                    raise of.Bad(f"zones.{key}: not [zone, digest, layout]")
                self._layouts[key] = item
        except of.Bad as exc:
            self._layouts = {}
            if not self.readonly:
                self._layouts_warning = f"{path}: {exc}; {of.set_aside(path)}"
                self._layouts_dirty = True
        return self._layouts

    def drop(self, path: Path) -> None:
        if self.entries.pop(str(path), None) is not None:
            self.dirty = True

    def keep_only(self, paths: set[str]) -> None:
        """Forget files that are no longer managed zones."""
        for p in [p for p in self.entries if p not in paths]:
            del self.entries[p]
            self.dirty = True
        if self._layouts is not None:
            for p in [p for p in self._layouts if p not in paths]:
                del self._layouts[p]
                self._layouts_dirty = True

    def _dump_layout(self, zone: str, x: ZoneLayout) -> list[Any]:
        # Owners relative to the zone ("@" for the zone itself): a third of the file's
        # size at 50 marked records a zone, read by every switch. The other columns as
        # they are: numbers and one string of kinds, which json encodes in C.
        known = self._relative.get(id(x.owners))
        if known is not None and known[0] is x.owners:
            owners = known[1]
        else:
            owners = [_short(owner, zone) for owner in x.owners]
        return _columns(zone, x, owners)

    def save(self) -> str | None:
        """Write the cache if it changed; a failure is a warning (the next run scans)."""
        warnings = [self._layouts_warning] if self._layouts_warning else []
        self._layouts_warning = None
        files: list[tuple[Path, dict[str, Any]]] = []
        if self.dirty:
            zones = {p: _dump(e) for p, e in self.entries.items()}
            files.append((self.path, {"version": VERSION, "zones": zones}))
        if self._layouts_dirty and self._layouts is not None:
            layouts = {
                p: [zone, sha, self._dump_layout(zone, x) if isinstance(x, ZoneLayout) else x]
                for p, (zone, sha, x) in self._layouts.items()
            }
            data = {"version": LAYOUTS_VERSION, "zones": layouts}
            files.append((self.path.with_name(LAYOUTS), data))
        if files:
            from kissha.files import atomic_write

            for path, data in files:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, json.dumps(data, separators=(",", ":")).encode())
                except OSError as exc:
                    warnings.append(
                        f"{path}: cannot write ({exc.strerror or exc}); the next run scans"
                    )
            self.dirty = self._layouts_dirty = False
        return "; ".join(warnings) or None


def _dump(e: Entry) -> list[Any]:
    s = e.summary
    return [
        e.zone,
        list(e.stat),
        e.recorded_ns,
        e.digest,
        s.serial,
        s.skeleton,
        s.has_include,
        [list(m) for m in s.marked],
    ]


def _columns(zone: str, x: ZoneLayout, owners: list[str]) -> list[Any]:
    return [
        x.skeleton,
        x.has_include,
        list(x.serial),
        x.offsets,
        x.lengths,
        x.lines,
        owners,
        x.kinds,
        [[_short(owner, zone), t, line, text] for owner, t, line, text in x.extra],
    ]


def _short(owner: str, zone: str) -> str:
    if owner == zone:
        return "@"
    rest = owner[: -len(zone) - 1]
    if owner.endswith("." + zone) and rest not in ("", "@") and not rest.endswith("."):
        return rest
    return owner


def _owner(short: str, zone: str) -> str:
    """The absolute owner name from _dump_layout's short form (absolute names end with
    a dot, relative ones never do)."""
    if short == "@":
        return zone
    return short if short.endswith(".") else f"{short}.{zone}"


_KIND_DIGITS = frozenset("0123")


def _layout(v: Any, where: str, zone: str) -> ZoneLayout:
    item = of.seq(v, where)
    if len(item) != 9:
        raise of.Bad(f"{where}: not 9 fields")
    skeleton, include, serial, offsets, lengths, lines, owners, kinds, extra = item
    serial = of.seq(serial, f"{where}[2]")
    if len(serial) != 2:
        raise of.Bad(f"{where}[2]: not an offset and a length")
    # Whole columns checked at once (map, set, min: C loops): ~50,000 spots at 1,000
    # zones, every switch.
    columns = (offsets, lengths, lines, owners)
    if not all(type(c) is list for c in columns) or type(kinds) is not str:
        raise of.Bad(f"{where}: not columns of spots")
    n = len(kinds)
    if any(len(c) != n for c in columns) or not _KIND_DIGITS.issuperset(kinds):
        raise of.Bad(f"{where}: columns of spots of different lengths, or a bad kind")
    numbers = (*offsets, *lengths, *lines)
    if n and (set(map(type, numbers)) != {int} or min(numbers) < 0):
        raise of.Bad(f"{where}: a spot's offset, length or line is not a count")
    if n and (set(map(type, owners)) != {str} or "" in owners):
        raise of.Bad(f"{where}: a spot's owner is not a name")
    dotted = "." + zone
    absolute = tuple(zone if o == "@" else o if o[-1] == "." else o + dotted for o in owners)
    others = []
    for i, e in enumerate(of.seq(extra, f"{where}[8]")):
        at = f"{where}[8][{i}]"
        e = of.seq(e, at)
        if len(e) != 4 or e[1] not in _TYPES:
            raise of.Bad(f"{at}: not an address record")
        others.append(
            (_owner(of.text(e[0], at), zone), e[1], of.count(e[2], at), of.text(e[3], at))
        )
    return ZoneLayout(
        (of.count(serial[0], f"{where}[2]"), of.count(serial[1], f"{where}[2]")),
        tuple(offsets),
        tuple(lengths),
        tuple(lines),
        absolute,
        kinds,
        tuple(others),
        of.text(skeleton, f"{where}[0]"),
        of.boolean(include, f"{where}[1]"),
    )


def _parse(raw: bytes) -> dict[str, Entry]:
    data = of.obj(of.parse(raw), "")
    if data.get("version") != VERSION:
        raise of.Bad("version: not 1")
    zones = of.obj(data.get("zones"), "zones")
    out: dict[str, Entry] = {}
    for path, v in zones.items():
        entry = _entry(v)
        if entry is not None:
            out[path] = entry
            continue
        # Damaged: the checks again, one by one, to say where.
        where = f"zones.{path}"
        item = of.seq(v, where)
        if len(item) != 8:
            raise of.Bad(f"{where}: not 8 fields")
        zone, stat, recorded, sha, serial, skeleton, include, marked = item
        stat = of.seq(stat, f"{where}[1]")
        if len(stat) != 4:
            raise of.Bad(f"{where}[1]: not 4 counts")
        if serial is not None and of.count(serial, f"{where}[4]") >= 2**32:
            raise of.Bad(f"{where}[4]: not a serial")
        records = []
        for i, m in enumerate(of.seq(marked, f"{where}[7]")):
            m = of.seq(m, f"{where}[7][{i}]")
            if len(m) != 4 or m[0] not in _ROLES or m[1] not in _TYPES:
                raise of.Bad(f"{where}[7][{i}]: not a marked record")
            records.append(
                (m[0], m[1], of.text(m[2], f"{where}[7][{i}]"), of.count(m[3], f"{where}[7][{i}]"))
            )
        out[path] = Entry(
            of.text(zone, f"{where}[0]"),
            (
                of.count(stat[0], f"{where}[1]"),
                of.count(stat[1], f"{where}[1]"),
                _integer(stat[2], f"{where}[1]"),
                _integer(stat[3], f"{where}[1]"),
            ),
            of.count(recorded, f"{where}[2]"),
            of.text(sha, f"{where}[3]"),
            ZoneSummary(
                serial,
                of.text(skeleton, f"{where}[5]"),
                of.boolean(include, f"{where}[6]"),
                tuple(records),
            ),
        )
    return out


def _entry(v: Any) -> Entry | None:
    """The entry, if ``v`` has the shape _parse checks (None: let it say what is wrong).
    Inline checks without messages: every run reads one per zone, thousands of them."""
    if type(v) is not list or len(v) != 8:
        return None
    zone, stat, recorded, sha, serial, skeleton, include, marked = v
    if not (
        type(zone) is str
        and type(sha) is str
        and type(skeleton) is str
        and type(include) is bool
        and type(recorded) is int
        and 0 <= recorded <= of.MAX_COUNT
        and (serial is None or (type(serial) is int and 0 <= serial < 2**32))
        and type(stat) is list
        and len(stat) == 4
        and all(type(x) is int for x in stat)
        and 0 <= stat[0] <= of.MAX_COUNT
        and 0 <= stat[1] <= of.MAX_COUNT
        and type(marked) is list
    ):
        return None
    records = []
    for m in marked:
        if type(m) is not list or len(m) != 4:
            return None
        role, rrtype, text, line = m
        if not (
            role in _ROLES
            and rrtype in _TYPES
            and type(text) is str
            and type(line) is int
            and 0 <= line <= of.MAX_COUNT
        ):
            return None
        records.append((role, rrtype, text, line))
    summary = ZoneSummary(serial, skeleton, include, tuple(records))
    return Entry(zone, (stat[0], stat[1], stat[2], stat[3]), recorded, sha, summary)


def _integer(v: Any, where: str) -> int:
    """Any integer: a file's times may lie before 1970."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise of.Bad(f"{where}: not an integer")
    return v
