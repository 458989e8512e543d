"""Install zone files: validate, journal, back up, replace, reload, verify, commit.

Zones are independent: a zone whose new file fails validation is not installed, and
a zone that the server does not serve after the reload is put back, while the others
go through. Only a failed reload puts every zone back.

The order makes every kill point recoverable (bench/run-killpoints kills kissha at
each of these system calls):

1. the journal (state_dir/journal.json) is written first: every zone about to be
   replaced, with the digests of its old and new text and the path of its backup;
2. each old file is hard-linked to its backup, then each new file renamed into place;
3. after the reload and the checks, zones that failed are put back from their backup;
4. the journal is removed: the commit point;
5. the backups of the zones that stay new are removed.

A run that dies before 4 leaves the journal: the next run puts back every file that
holds the new text (from its backup) and leaves alone one edited since. A run that dies
after 4 leaves only backups with no journal: finished work, removed by the next run.
Whatever the files hold afterwards, each run compares the serial the server answers
with each file's and reloads when they differ (``converge``), so what is served always
comes back to the files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import operator
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from kissha.config import DnsConfig, zone_refs
from kissha.core.report import Applying, ApplyReport, ZoneFailure
from kissha.core.zonefile import ZonePlan
from kissha.dns.backend import journal_path
from kissha.dns.verify import Check, Failure, ask_serials, verify
from kissha.errors import ApplyFailed, EnvError, JournalError, os_error
from kissha.files import (
    BACKUP_SUFFIX,
    TMP_SUFFIX,
    atomic_write,
    fsync_dir,
    hidden_sibling,
    make_durable,
    through_links,
    write_temp,
)

log = logging.getLogger(__name__)
_OWNER_TYPE = operator.itemgetter(1, 2)  # a RecordChange's (owner, rrtype)
_TYPE = operator.itemgetter(1)  # an (owner, rrtype)'s rrtype
ENCODING = ("utf-8", "surrogateescape")
KEPT_SUFFIX = ".kissha-kept"  # a backup recovery could not use: kept, never swept
# How long a server may take to load zone data, on top of verify_timeout, while it
# still serves the old serial or does not answer: nsd 4.6 loaded 8 MB in 0.9 s
# (~9 MB/s) on the project's machines; a quarter of that leaves room for a busy host.
# A 50 MB change waits up to verify_timeout + 20 s.
LOAD_BYTES_PER_SECOND = 2_500_000
LOOK_TIMEOUT = 1.0  # the serial look of a run that changes nothing, at most


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(text: str) -> bytes:
    return text.encode(*ENCODING)


class FileZoneServer(ABC):
    """A server that loads zone files: subclasses say how to check a file and reload."""

    def __init__(self, dns: DnsConfig, state_dir: Path) -> None:
        self.dns = dns
        self.state_dir = state_dir
        self._invalid: set[str] = set()  # zones whose file failed precheck this run
        self._broken: set[str] = set()  # zone files known broken: never reload them
        # Each zone file's target (through symbolic links), resolved once per apply: a
        # switch touches a file ~6 times, and one resolution keeps every step on the
        # same file even if a link is changed during the run.
        self._targets: dict[Path, tuple[Path, Path]] = {}  # path -> (target, its backup)

    def _resolve(self, path: Path) -> tuple[Path, Path]:
        got = self._targets.get(path)
        if got is None:
            real = through_links(path)
            got = self._targets[path] = (real, hidden_sibling(real, BACKUP_SUFFIX))
        return got

    def _target(self, path: Path) -> Path:
        return self._resolve(path)[0]

    def _backup(self, path: Path) -> Path:
        return self._resolve(path)[1]

    # -- what a concrete server provides -------------------------------------------------

    @abstractmethod
    def check(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """Validate files (zone name, path); return {zone: error} for the invalid ones.
        Raise EnvError when the checker cannot run."""

    @abstractmethod
    def reload(self, zones: Sequence[str] | None = None) -> None:
        """Make the server load changed zone files (only those of ``zones`` if given);
        raise ApplyFailed if it cannot."""

    def _reload(self, zones: Sequence[str]) -> None:
        """Reload everything at once, unless a managed zone file is known to be broken:
        a plain reload would make the server load it too (it serves SERVFAIL then), so
        only ``zones`` are reloaded, one by one."""
        self.reload(list(zones) if self._broken else None)

    def tools(self) -> list[tuple[str, str]]:
        """The programs a change needs, as (config key, argv[0])."""
        return []

    # -- the transaction -----------------------------------------------------------------

    def apply(self, plans: Sequence[ZonePlan], broken: Sequence[str] = ()) -> ApplyReport:
        """``broken``: zones whose files the caller could not plan (never reloaded)."""
        report = Applying()
        self._targets = {}
        self._broken = set(broken) | self._invalid
        self._need_tools()
        t0 = time.monotonic()
        temps: dict[Path, Path] = {}
        try:
            self._write_temps(plans, temps)
            report.timings["write"] = time.monotonic() - t0
            t1 = time.monotonic()
            valid = self._validate(plans, temps, report)
            report.timings["validate"] = time.monotonic() - t1
            self._broken |= {f.zone for f in report.failed}
            installed = self._install(valid, temps, report)
        finally:
            for tmp in temps.values():  # not installed: invalid, or an error
                with contextlib.suppress(OSError):
                    tmp.unlink()
        if not installed:
            return report.freeze()
        t2 = time.monotonic()
        try:
            self._reload([p.zone for p in installed])
            report.timings["reload"] = time.monotonic() - t2
            t3 = time.monotonic()
            checks = self.checks(installed, new=True)
            report.verified = len(checks) * len(self.dns.verify_servers)
            failures = self._verify(checks, installed)
            report.timings["verify"] = time.monotonic() - t3
        except ApplyFailed as exc:
            report.error = str(exc)
            report.rollback = self._rollback(installed)
            self._commit([])
            report.failed += [ZoneFailure(p.zone, p.path, "reload", str(exc)) for p in installed]
            return report.freeze()
        except BaseException:  # SIGINT, a bug: put every zone back, then fail
            self._rollback(installed)
            self._commit([])
            raise
        by_zone: dict[str, list[Failure]] = {}
        for f in failures:
            by_zone.setdefault(f.zone, []).append(f)
        bad = [p for p in installed if p.zone in by_zone]
        good = [p for p in installed if p.zone not in by_zone]
        for p in bad:
            words = _summary(
                "the server does not serve the new zone", [str(f) for f in by_zone[p.zone]]
            )
            report.failed.append(ZoneFailure(p.zone, p.path, "verify", words))
        if bad:
            report.rollback = self._rollback(bad)
        self._commit(good)
        self._remember(good)
        report.zones = [p.zone for p in good]
        return report.freeze()

    def _need_tools(self) -> None:
        """A missing program is found before any file is touched, not at the reload."""
        for key, program in self.tools():
            if shutil.which(program) is None:
                cause = "no such file" if "/" in program else "not found in PATH"
                if "/" in program and Path(program).exists():
                    cause = "not executable"
                raise EnvError(f"{program}: cannot run it ({key}): {cause}; nothing was changed")

    def _write_temps(self, plans: Sequence[ZonePlan], temps: dict[Path, Path]) -> None:
        # Written one after another, then made durable at once (files.make_durable: one
        # syncfs instead of an fsync each); fsyncs in threads measured no faster.
        for p in plans:
            assert p.new_text is not None
            real = self._target(p.path)
            try:
                temps[p.path] = write_temp(real, encode(p.new_text), like=real, durable=False)
            except OSError as exc:
                raise self._write_error(exc, real.parent, p.path) from None
        try:
            make_durable(list(temps.values()))
        except OSError as exc:
            raise self._write_error(exc, self.dns.zones_dir, None) from None

    @staticmethod
    def _write_error(exc: OSError, directory: Path, path: Path | None) -> EnvError:
        where = exc.filename or directory
        what = f"write the new {path.name}" if path is not None else "write the new zone files"
        return EnvError(os_error(where, exc, what) + "; nothing was changed")

    def precheck(self, plans: Sequence[ZonePlan]) -> list[str]:
        """Check the files on disk of zones whose skeleton no run has validated yet.

        The current file and the one a failover would write share their skeleton, so a
        file that passes now makes its failover need no check later (a cold 1,000-zone
        switch would otherwise spend ~1.5 s in nsd-checkzone), and one that fails is
        reported now, not when an emergency failover cannot change it.
        """
        known = self._checked()
        todo = [
            p
            for p in plans
            if p.skeleton
            and not p.has_include
            and known.get(str(p.path)) != f"{p.zone} {p.skeleton}"
        ]
        if not todo:
            return []
        try:
            errors = self.check([(p.zone, p.path) for p in todo])
        except EnvError as exc:  # nothing was to change: a warning, not a failed run
            return [f"cannot check the zone files: {exc}"]
        self._invalid = set(errors)
        self._remember([p for p in todo if p.zone not in errors])
        return [
            f"{zone}: the zone file does not pass {self.dns.checkzone[0]}, so a failover "
            f"could not change it: {error}"
            for zone, error in sorted(errors.items())
        ]

    def _validate(
        self, plans: Sequence[ZonePlan], temps: dict[Path, Path], report: Applying
    ) -> list[ZonePlan]:
        """The plans whose new file passes; the others become failures, not installed.

        A zone whose skeleton (text minus what kissha writes) passed the server's checker
        before needs no new check: only validated address literals and the serial differ.
        Hand edits change the skeleton; $INCLUDE pulls in text we cannot see."""
        known = self._checked()
        todo = [
            (p.zone, temps[p.path])
            for p in plans
            if p.has_include or known.get(str(p.path)) != f"{p.zone} {p.skeleton}"
        ]
        report.checked, report.trusted = len(todo), len(plans) - len(todo)
        errors = self.check(todo) if todo else {}
        valid = []
        for p in plans:
            if p.zone not in errors:
                valid.append(p)
                continue
            # name the zone's own file, not the hidden temp file that was checked
            error = errors[p.zone].replace(str(temps[p.path]), str(p.path))
            report.failed.append(ZoneFailure(p.zone, p.path, "validate", error))
        return valid

    def _install(
        self, plans: Sequence[ZonePlan], temps: dict[Path, Path], report: Applying
    ) -> list[ZonePlan]:
        """Journal, back up, replace: see the module's docstring for why in this order."""
        ready: list[ZonePlan] = []
        entries = []
        for p in plans:
            real = self._target(p.path)
            try:
                current = real.read_bytes()
            except OSError as exc:
                raise EnvError(os_error(real, exc, "read") + "; nothing was changed") from None
            if current != encode(p.old_text):
                report.failed.append(
                    ZoneFailure(
                        p.zone, p.path, "install", "changed on disk during the run; left as it is"
                    )
                )
                continue
            ready.append(p)
            entries.append(
                {
                    "path": str(real),
                    "backup": str(self._backup(p.path)),
                    "old": digest(current),
                    "new": digest(encode(p.new_text or "")),
                }
            )
        if not ready:
            return []
        self._write_journal(entries)
        backups: list[Path] = []
        try:
            for p in ready:
                real = self._target(p.path)
                backup = self._backup(p.path)
                try:
                    _link(real, backup)
                except OSError as exc:
                    if exc.errno in (errno.EROFS, errno.EACCES, errno.ENOSPC):
                        raise
                    shutil.copy2(real, backup)  # a file system without hard links
                backups.append(backup)
        except OSError as exc:
            for b in backups:
                with contextlib.suppress(OSError):
                    b.unlink()
            journal_path(self.state_dir).unlink(missing_ok=True)
            where = exc.filename or ready[len(backups)].path
            raise EnvError(os_error(where, exc, "back up") + "; nothing was changed") from None
        installed: list[ZonePlan] = []
        try:
            for p in ready:
                os.replace(temps[p.path], self._target(p.path))
                del temps[p.path]
                installed.append(p)
        except OSError as exc:
            for p in installed:
                real = self._target(p.path)
                os.replace(self._backup(p.path), real)
            journal_path(self.state_dir).unlink(missing_ok=True)
            for p in ready[len(installed) :]:
                self._backup(p.path).unlink(missing_ok=True)
            where = exc.filename or ready[len(installed)].path
            raise EnvError(
                os_error(where, exc, "install") + "; the old files are back, nothing was changed"
            ) from None
        finally:
            for d in {self._target(p.path).parent for p in ready}:
                fsync_dir(d)
        return installed

    def _rollback(self, plans: Sequence[ZonePlan]) -> str:
        """Put ``plans`` back from their backups, reload, confirm the old answers."""
        for p in plans:
            real = self._target(p.path)
            os.replace(self._backup(p.path), real)
            # The backup keeps the old mtime; touch it so the server sees a changed file.
            os.utime(real)
        for d in {self._target(p.path).parent for p in plans}:
            fsync_dir(d)
        try:
            self._reload([p.zone for p in plans])
        except ApplyFailed as exc:
            return f"old zone files restored, but the reload failed too ({exc})"
        failures = self._verify(self.checks(plans, new=False), plans)
        if failures:
            return _summary(
                "old zone files restored, old answers NOT confirmed", [str(f) for f in failures]
            )
        return f"old zone files restored and old answers confirmed ({len(plans)} zones)"

    def _commit(self, kept: Sequence[ZonePlan]) -> None:
        """The journal goes first (the commit point), then the backups of ``kept``."""
        journal_path(self.state_dir).unlink(missing_ok=True)
        for p in kept:
            self._backup(p.path).unlink(missing_ok=True)

    # -- verification --------------------------------------------------------------------

    def checks(self, plans: Sequence[ZonePlan], new: bool) -> list[Check]:
        """What to ask every server: each zone's SOA serial, then sampled names gated on
        it (a name is asked for once the server serves the zone's new serial).

        At most ``verify_max_names`` names, spread over the zones and families, at
        least one each: the serial proves the whole file is loaded, the names that it
        says the right thing.
        """
        # Each plan's changed (owner, type)s, gathered once: ~50 changes a zone, in C
        # loops (itemgetter): 50,000 at 1,000 zones.
        changed = [set(map(_OWNER_TYPE, p.changes)) for p in plans]
        keys = sum(map(len, changed))
        groups = sum(len(set(map(_TYPE, owners))) for owners in changed) or 1
        budget = self.dns.verify_max_names
        per_group = keys if keys <= budget else max(1, budget // groups)
        checks: list[Check] = []
        for p, owners in zip(plans, changed, strict=True):
            gate = len(checks)
            want, before = (p.new_serial, p.old_serial) if new else (p.old_serial, p.new_serial)
            checks.append(Check(p.zone, "SOA", serial=want, zone=p.zone, old_serial=before))
            for key in _sample(sorted(owners), per_group):
                old, served = p.answers_for(key)
                if not new:  # a rollback: the old addresses are the ones to see again
                    old, served = served, old
                checks.append(
                    Check(*key, addresses=served, gate=gate, zone=p.zone, old_addresses=old)
                )
        return checks

    def _verify(self, checks: Sequence[Check], plans: Sequence[ZonePlan]) -> list[Failure]:
        return verify(
            self.dns.verify_servers,
            self.dns.verify_port,
            checks,
            self.dns.verify_timeout,
            grace=load_grace(sum(p.size for p in plans)),
        )

    def converge(
        self, plans: Sequence[ZonePlan], broken: Sequence[str] = ()
    ) -> tuple[list[str], list[str]]:
        """Zones whose file the server does not serve (it answers another serial: a
        crash or a failed reload after the files changed): reload once, verify them.

        Only a different serial counts: no answer, REFUSED (a zone the server does not
        load) or SERVFAIL say nothing about kissha's files."""
        files = {
            p.zone: p
            for p in plans
            if p.old_serial is not None and not p.changed and p.zone not in self._invalid
        }
        if not files:
            return [], []
        served = self._look(list(files))
        stale: dict[str, set[int]] = {}
        for (_, zone), serial in served.items():
            if serial is not None and serial != files[zone].old_serial:
                stale.setdefault(zone, set()).add(serial)
        if not stale:
            return [], []
        zones = sorted(stale)

        def was(zone: str) -> str:
            wrong = ", ".join(map(str, sorted(stale[zone])))
            return (
                f"{zone}: the server served serial {wrong}, the file says {files[zone].old_serial}"
            )

        self._broken = set(broken) | self._invalid
        try:
            self._reload(zones)
        except ApplyFailed as exc:
            return [], [f"{was(z)}; reload failed: {exc}" for z in zones]
        checks = [
            Check(
                z,
                "SOA",
                serial=files[z].old_serial,
                zone=z,
                old_serial=next(iter(stale[z])) if len(stale[z]) == 1 else None,
            )
            for z in zones
        ]
        failures = verify(
            self.dns.verify_servers,
            self.dns.verify_port,
            checks,
            self.dns.verify_timeout,
            grace=load_grace(sum(files[z].size for z in zones)),
        )
        failed = {f.zone: f for f in failures}
        done = [f"{was(z)}: reloaded, now served" for z in zones if z not in failed]
        warnings = [
            f"{was(z)}: reloaded, still not served: {failed[z]}" for z in zones if z in failed
        ]
        return done, warnings

    def _look(self, zones: list[str]) -> dict[tuple[str, str], int | None]:
        """The serial each zone is served with, asked at one ``verify_servers`` address
        and at the next only for the zones that got no answer there.

        One address suffices: they are all this node's one nameserver (the setting's
        meaning; kissha reloads it as one), and a server process serves each zone
        with one serial at every address it listens on, so a stale zone shows at the
        first address that answers. Asking every address doubled the look's queries
        (2,000 at 1,000 zones) for no more knowledge. An address that refuses costs
        nothing (the look stops on refusal); one that is silent costs its timeout
        before the next is asked."""
        look = min(LOOK_TIMEOUT, self.dns.verify_timeout)
        served: dict[tuple[str, str], int | None] = {}
        for server in self.dns.verify_servers:
            got = ask_serials([server], self.dns.verify_port, zones, look)
            served.update(got)
            zones = [z for z in zones if got[(server, z)] is None]
            if not zones:
                break
        return served

    # -- memory of validated skeletons and the journal -----------------------------------

    def _checked_path(self) -> Path:
        return self.state_dir / "checked.json"

    def _checked(self) -> dict[str, str]:
        try:
            data = json.loads(self._checked_path().read_bytes())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _remember(self, plans: Sequence[ZonePlan]) -> None:
        if not plans:
            return
        known = self._checked()
        known.update({str(p.path): f"{p.zone} {p.skeleton}" for p in plans})
        with contextlib.suppress(OSError):
            atomic_write(self._checked_path(), json.dumps(known, indent=0).encode())

    def _write_journal(self, entries: list[dict[str, str]]) -> None:
        path = journal_path(self.state_dir)
        data = {"pid": os.getpid(), "time": time.time(), "zones": entries}
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(data, indent=1).encode())
        except OSError as exc:
            raise EnvError(
                os_error(exc.filename or path, exc, "write the journal") + "; nothing was changed"
            ) from None

    def _siblings(self, *suffixes: str) -> list[list[Path]]:
        """For each of ``suffixes``: the hidden files with it beside every managed zone
        file (and link target)."""
        # One zone list and one listing per directory for every suffix at once, names
        # compared as strings: every run does this, for thousands of zones.
        listed: dict[Path, tuple[frozenset[str], frozenset[str]]] = {}  # hidden, links

        def listing(d: Path) -> tuple[frozenset[str], frozenset[str]]:
            got = listed.get(d)
            if got is None:
                hidden, links = set(), set()
                try:
                    with os.scandir(d) as entries:
                        for e in entries:
                            if e.name[0] == ".":
                                hidden.add(e.name)
                            if e.is_symlink():
                                links.add(e.name)
                except OSError:
                    pass
                got = listed[d] = (frozenset(hidden), frozenset(links))
            return got

        found: list[dict[Path, None]] = [{} for _ in suffixes]
        if self._none_beside_plain_files(listing, suffixes):
            return [[] for _ in suffixes]
        for ref in zone_refs(self.dns):
            files = [ref.path]
            if ref.path.name in listing(ref.path.parent)[1]:
                files.append(through_links(ref.path))
            for f in files:
                hidden = listing(f.parent)[0]
                for i, suffix in enumerate(suffixes):
                    name = f".{f.name}{suffix}"
                    if name in hidden:
                        found[i][f.with_name(name)] = None
        return [list(f) for f in found]

    def _none_beside_plain_files(
        self,
        listing: Callable[[Path], tuple[frozenset[str], frozenset[str]]],
        suffixes: Sequence[str],
    ) -> bool:
        """True when no file can have a sibling: every managed zone file is a plain
        file (no link) right in the zones directory, and no hidden name there ends with
        one of ``suffixes``. The usual case, told by one listing without the zone list."""
        for item in self.dns.zones:
            if isinstance(item, str) and ("/" in item or "**" in item):
                return False
            if not isinstance(item, str) and item.path.parent != self.dns.zones_dir:
                return False
        hidden, links = listing(self.dns.zones_dir)
        if links:
            return False
        return not any(name.endswith(tuple(suffixes)) for name in hidden)

    def recover(self) -> list[str]:
        """Undo what an interrupted run left: see the module's docstring.

        A journal that cannot be read is set aside only when no backup exists beside any
        zone file (then no file was replaced, or every one was put back); otherwise it
        is refused: kissha cannot tell which file to restore, and guessing could undo
        an operator's edit or lose the only copy of the old zone."""
        path = journal_path(self.state_dir)
        try:
            return self._recover(path)
        except OSError as exc:
            raise EnvError(
                os_error(exc.filename or path, exc, "recover an interrupted run")
            ) from None

    def _recover(self, path: Path) -> list[str]:
        done: list[str] = []
        try:
            raw: bytes | None = path.read_bytes()
        except FileNotFoundError:
            raw = None
        entries = None if raw is None else _journal_entries(raw)
        if raw is not None and entries is None:
            (backups,) = self._siblings(BACKUP_SUFFIX)
            if backups:
                more = f" (+{len(backups) - 1} more)" if len(backups) > 1 else ""
                raise JournalError(
                    f"{path}: damaged journal of an interrupted run, and backups exist "
                    f"({backups[0]}{more}): cannot tell which zone files to put back; "
                    "compare each zone file with its .kissha-old backup, keep the right "
                    f"one, remove the backup, then remove {path}; nothing was changed"
                )
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            done.append(
                f"{path}: damaged journal set aside as {aside.name} (no backup: nothing to undo)"
            )
        dirs: set[Path] = set()
        for entry in entries or []:
            zone, backup = Path(entry["path"]), Path(entry["backup"])
            dirs.add(zone.parent)
            try:
                current = digest(zone.read_bytes())
            except FileNotFoundError:
                current = ""
            if current == entry["old"]:
                backup.unlink(missing_ok=True)
            elif current == entry["new"] and backup.exists():
                os.replace(backup, zone)
                os.utime(zone)
                done.append(f"{zone}: interrupted run undone (old file restored)")
            elif backup.exists():
                kept = backup.with_name(backup.name.removesuffix(BACKUP_SUFFIX) + KEPT_SUFFIX)
                os.replace(backup, kept)
                done.append(
                    f"{zone}: edited since an interrupted run; left as it is, "
                    f"the old file kept at {kept}"
                )
            else:
                done.append(f"{zone}: edited since an interrupted run; left as it is")
        for d in dirs:
            fsync_dir(d)
        if raw is not None and entries is not None:
            path.unlink()  # undone: the serial check (converge) reloads what needs it
        temps, backups = self._siblings(TMP_SUFFIX, BACKUP_SUFFIX)
        for leftover in temps:
            leftover.unlink()
            done.append(f"{leftover}: unfinished temp file removed")
        for leftover in backups:
            # No journal names it: the run that made it had committed (see above).
            leftover.unlink()
            done.append(f"{leftover}: backup of a finished run removed")
        return done


def load_grace(size: int) -> float:
    """Seconds to wait on, past verify_timeout, for a server still loading ``size``
    bytes of zone files."""
    return size / LOAD_BYTES_PER_SECOND


def _journal_entries(raw: bytes) -> list[dict[str, str]] | None:
    """The journal's zones, or None when it is not a journal kissha wrote."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    zones = data.get("zones") if isinstance(data, dict) else None
    if not isinstance(zones, list):
        return None
    keys = ("path", "backup", "old", "new")
    for entry in zones:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in keys):
            return None
        if not entry["path"] or not entry["backup"]:
            return None
    return zones


def _link(real: Path, backup: Path) -> None:
    """Hard-link ``real`` to ``backup``, replacing a backup left behind (recovery removes
    them first: an unlink before every link cost 5,000 failing calls at 5,000 zones)."""
    try:
        os.link(real, backup)
    except FileExistsError:
        backup.unlink()
        os.link(real, backup)


def _sample(keys: list[tuple[str, str]], budget: int) -> list[tuple[str, str]]:
    """At most ``budget`` names per family, spread evenly over the zone, always >= 1."""
    out: list[tuple[str, str]] = []
    for rrtype in ("A", "AAAA"):
        of_type = [k for k in keys if k[1] == rrtype]
        if len(of_type) <= budget:
            out.extend(of_type)
        else:
            step = len(of_type) / budget
            out.extend(of_type[int(i * step)] for i in range(budget))
    return out


def _summary(head: str, items: Sequence[str], most: int = 5) -> str:
    shown = "; ".join(items[:most])
    more = f" (+{len(items) - most} more)" if len(items) > most else ""
    return f"{head}: {shown}{more}"
