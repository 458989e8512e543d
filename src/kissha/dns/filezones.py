"""Install zone files as one transaction: validate, back up, journal, replace, reload, verify.

The journal (state_dir/journal.json) lists every zone being replaced with the digests
of its old and new text and the path of its backup (a hard link to the old file). It is
written before the first zone is replaced and removed after the last check, so a run
that dies at any point leaves each zone file either old or new, and the next run undoes
exactly what the journal names, refusing to touch a file edited since.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from kissha.config import DnsConfig, zone_refs
from kissha.core.zonefile import ZonePlan
from kissha.dns.backend import ApplyReport, journal_path
from kissha.dns.verify import Check, verify
from kissha.errors import ApplyFailed
from kissha.files import (
    BACKUP_SUFFIX,
    TMP_SUFFIX,
    atomic_write,
    fsync_dir,
    hidden_sibling,
    write_temp,
)

log = logging.getLogger(__name__)
ENCODING = ("utf-8", "surrogateescape")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(text: str) -> bytes:
    return text.encode(*ENCODING)


class FileZoneServer(ABC):
    """A server that loads zone files: subclasses say how to check a file and reload."""

    def __init__(self, dns: DnsConfig, state_dir: Path) -> None:
        self.dns = dns
        self.state_dir = state_dir

    # -- what a concrete server provides -------------------------------------------------

    @abstractmethod
    def check(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """Validate files (zone name, path); return {zone: error} for the invalid ones."""

    @abstractmethod
    def reload(self) -> None:
        """Make the server load changed zone files; raise ApplyFailed if it cannot."""

    # -- the transaction -----------------------------------------------------------------

    def apply(self, plans: Sequence[ZonePlan]) -> ApplyReport:
        report = ApplyReport(zones=[p.zone for p in plans])
        t0 = time.monotonic()
        temps: dict[Path, Path] = {}
        try:
            self._write_temps(plans, temps)
            report.timings["write"] = time.monotonic() - t0
            t1 = time.monotonic()
            self._validate(plans, temps, report)
            report.timings["validate"] = time.monotonic() - t1
            installed = self._install(plans, temps)
        except BaseException:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise
        t2 = time.monotonic()
        try:
            self.reload()
            report.timings["reload"] = time.monotonic() - t2
            t3 = time.monotonic()
            checks = self.checks(plans, new=True)
            report.verified = len(checks) * len(self.dns.verify_servers)
            failures = self._verify(checks)
            report.timings["verify"] = time.monotonic() - t3
            if failures:
                raise ApplyFailed(_summary("the server does not serve the new zones", failures))
        except BaseException as exc:
            undone = self._rollback(installed, plans)
            if isinstance(exc, ApplyFailed):
                raise ApplyFailed(f"{exc}; rolled back: {undone}") from None
            raise
        self._finish(installed)
        self._remember(plans)
        return report

    @staticmethod
    def _write_temps(plans: Sequence[ZonePlan], temps: dict[Path, Path]) -> None:
        # One after another: fsyncs in threads measured no faster in real runs.
        for p in plans:
            assert p.new_text is not None
            temps[p.path] = write_temp(p.path, encode(p.new_text), like=p.path)

    def precheck(self, plans: Sequence[ZonePlan]) -> list[str]:
        """Check the files on disk of zones whose skeleton no run has validated yet.

        The current file and the one a failover would write share their skeleton, so a
        file that passes now makes its failover need no check later (a cold 1,000-zone
        switch would otherwise spend ~1.5 s in nsd-checkzone), and one that fails is
        reported now, not when an emergency failover is rolled back because of it.
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
        errors = self.check([(p.zone, p.path) for p in todo])
        self._remember([p for p in todo if p.zone not in errors])
        return [
            f"{zone}: the zone file does not pass {self.dns.checkzone[0]}, so a failover "
            f"would be rolled back: {error}"
            for zone, error in sorted(errors.items())
        ]

    def _validate(
        self, plans: Sequence[ZonePlan], temps: dict[Path, Path], report: ApplyReport
    ) -> None:
        # A zone whose skeleton (text minus what kissha writes) passed the server's checker
        # before needs no new check: only validated address literals and the serial differ.
        # Hand edits change the skeleton; $INCLUDE pulls in text we cannot see.
        known = self._checked()
        todo = [
            (p.zone, temps[p.path])
            for p in plans
            if p.has_include or known.get(str(p.path)) != f"{p.zone} {p.skeleton}"
        ]
        report.checked, report.trusted = len(todo), len(plans) - len(todo)
        errors = self.check(todo) if todo else {}
        if errors:
            # name the zone's own file, not the hidden temp file that was checked
            real = {str(temps[p.path]): str(p.path) for p in plans}
            lines = []
            for z, e in sorted(errors.items()):
                for tmp, path in real.items():
                    e = e.replace(tmp, path)
                lines.append(f"{z}: {e}")
            raise ApplyFailed(_summary("validation failed, nothing was installed", lines))

    def _install(self, plans: Sequence[ZonePlan], temps: dict[Path, Path]) -> list[ZonePlan]:
        entries = []
        for p in plans:
            current = p.path.read_bytes()
            if current != encode(p.old_text):
                raise ApplyFailed(f"{p.path}: changed on disk during the run; nothing installed")
            backup = hidden_sibling(p.path, BACKUP_SUFFIX)
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()
            try:
                os.link(p.path, backup)
            except OSError:
                shutil.copy2(p.path, backup)
            entries.append(
                {
                    "path": str(p.path),
                    "backup": str(backup),
                    "old": digest(current),
                    "new": digest(encode(p.new_text or "")),
                }
            )
        self._write_journal(entries)
        installed: list[ZonePlan] = []
        try:
            for p in plans:
                os.replace(temps.pop(p.path), p.path)
                installed.append(p)
        except OSError as exc:
            for p in installed:
                os.replace(hidden_sibling(p.path, BACKUP_SUFFIX), p.path)
            journal_path(self.state_dir).unlink(missing_ok=True)
            raise ApplyFailed(f"installing failed ({exc}); the old files are back") from None
        finally:
            for d in {p.path.parent for p in plans}:
                fsync_dir(d)
        return installed

    def _rollback(self, installed: Sequence[ZonePlan], plans: Sequence[ZonePlan]) -> str:
        for p in installed:
            backup = hidden_sibling(p.path, BACKUP_SUFFIX)
            os.replace(backup, p.path)
            # The backup keeps the old mtime; touch it so the server sees a changed file.
            os.utime(p.path)
        for d in {p.path.parent for p in installed}:
            fsync_dir(d)
        try:
            self.reload()
        except ApplyFailed as exc:
            journal_path(self.state_dir).unlink(missing_ok=True)
            return f"old zone files restored, but the reload failed too ({exc})"
        failures = self._verify(self.checks(plans, new=False))
        journal_path(self.state_dir).unlink(missing_ok=True)
        if failures:
            return _summary("old zone files restored, old answers NOT confirmed", failures)
        return f"old zone files restored and old answers confirmed ({len(installed)} zones)"

    def _finish(self, installed: Sequence[ZonePlan]) -> None:
        for p in installed:
            hidden_sibling(p.path, BACKUP_SUFFIX).unlink(missing_ok=True)
        journal_path(self.state_dir).unlink(missing_ok=True)

    # -- verification --------------------------------------------------------------------

    def checks(self, plans: Sequence[ZonePlan], new: bool) -> list[Check]:
        """What to ask every server: each zone's SOA serial, then sampled names gated on
        it (a name is asked for once the server serves the zone's new serial).

        At most ``verify_max_names`` names, spread over the zones and families, at
        least one each: the serial proves the whole file is loaded, the names that it
        says the right thing.
        """
        keys = sum(len({(c.owner, c.rrtype) for c in p.changes}) for p in plans)
        groups = sum(len({c.rrtype for c in p.changes}) for p in plans) or 1
        budget = self.dns.verify_max_names
        per_group = keys if keys <= budget else max(1, budget // groups)
        checks: list[Check] = []
        for p in plans:
            gate = len(checks)
            answers = p.expected_for if new else p.previous_for
            checks.append(Check(p.zone, "SOA", serial=p.new_serial if new else p.old_serial))
            owners = sorted({(c.owner, c.rrtype) for c in p.changes})
            for key in _sample(owners, per_group):
                checks.append(Check(*key, addresses=answers(key), gate=gate))
        return checks

    def _verify(self, checks: Sequence[Check]) -> list[str]:
        return verify(
            self.dns.verify_servers, self.dns.verify_port, checks, self.dns.verify_timeout
        )

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
        known = self._checked()
        known.update({str(p.path): f"{p.zone} {p.skeleton}" for p in plans})
        with contextlib.suppress(OSError):
            atomic_write(self._checked_path(), json.dumps(known, indent=0).encode())

    def _write_journal(self, entries: list[dict[str, str]]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {"pid": os.getpid(), "time": time.time(), "zones": entries}
        atomic_write(journal_path(self.state_dir), json.dumps(data, indent=1).encode())

    def recover(self) -> list[str]:
        done: list[str] = []
        path = journal_path(self.state_dir)
        restored = False
        try:
            journal = json.loads(path.read_bytes())
        except FileNotFoundError:
            journal = None
        except ValueError:
            done.append(f"{path}: unreadable journal set aside as {path.name}.corrupt")
            os.replace(path, path.with_name(path.name + ".corrupt"))
            journal = None
        for entry in (journal or {}).get("zones", []):
            zone, backup = Path(entry["path"]), Path(entry["backup"])
            try:
                current = digest(zone.read_bytes())
            except FileNotFoundError:
                current = ""
            if current == entry["new"] and backup.exists():
                os.replace(backup, zone)
                os.utime(zone)
                restored = True
                done.append(f"{zone}: interrupted run undone (old file restored)")
            elif current == entry["old"]:
                backup.unlink(missing_ok=True)
            else:
                done.append(
                    f"{zone}: edited since an interrupted run; left as it is, "
                    f"backup kept at {backup}"
                )
        for ref in zone_refs(self.dns):
            leftover = hidden_sibling(ref.path, TMP_SUFFIX)
            if leftover.exists():
                leftover.unlink()
                done.append(f"{leftover}: unfinished temp file removed")
        if journal is not None:
            for d in {Path(e["path"]).parent for e in journal.get("zones", [])}:
                fsync_dir(d)
            if restored:
                self.reload()
            path.unlink(missing_ok=True)
        return done


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
