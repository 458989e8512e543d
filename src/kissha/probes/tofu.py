"""Certificates seen by the probes: fingerprints, notAfter from DER, expiry warnings, and
the trust-on-first-use memory (``state_dir/tofu.json``) for Gemini servers."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kissha import ownfile as of
from kissha.core.model import iso
from kissha.files import atomic_write

log = logging.getLogger(__name__)
DAY = 86400.0
TOFU_FILE = "tofu.json"
TOFU_VERSION = 1


class Untrusted(Exception):
    """A certificate that TOFU does not accept; the message says why and what to do."""


def fingerprint(der: bytes) -> str:
    """``sha256:HEX`` of a DER certificate, the form config pins and tofu.json use."""
    return "sha256:" + hashlib.sha256(der).hexdigest().upper()


def short(fp: str) -> str:
    """A fingerprint abbreviated for reports: ``sha256:`` and its first 16 hex digits."""
    return fp[: len("sha256:") + 16] + "…"


def day(ts: float) -> str:
    """Epoch seconds as a UTC date, for expiry messages."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def der_not_after(der: bytes) -> float:
    """A DER certificate's notAfter in epoch seconds, by a minimal ASN.1 walk.

    ssl reports notAfter only for certificates it verified, and the cryptography package
    costs ~65 ms to import, every minute. Certificate > tbsCertificate > [0] version,
    serialNumber, signature, issuer, validity > notBefore, notAfter (RFC 5280 4.1).
    """

    def element(pos: int) -> tuple[int, int, int]:  # tag, start and end of the contents
        tag, length = der[pos], der[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        if pos + length > len(der):
            raise ValueError("truncated certificate")
        return tag, pos, pos + length

    try:
        _, pos, _ = element(0)  # Certificate
        _, pos, _ = element(pos)  # tbsCertificate
        tag, _, after = element(pos)
        if tag == 0xA0:  # an explicit version
            pos = after
        for _ in range(3):  # serialNumber, signature, issuer
            _, _, pos = element(pos)
        tag, pos, _ = element(pos)  # validity
        _, _, pos = element(pos)  # notBefore
        kind, start, end = element(pos)  # notAfter
        text = der[start:end].decode("ascii")
    except (IndexError, UnicodeDecodeError):
        raise ValueError("not a DER certificate") from None
    if tag != 0x30 or kind not in (0x17, 0x18) or not text.endswith("Z"):
        raise ValueError("not a DER certificate")
    if kind == 0x17:  # UTCTime: YYMMDDHHMMSSZ, 50-99 meaning 19xx (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return float(calendar.timegm(time.strptime(text, "%Y%m%d%H%M%SZ")))


def cert_warning(not_after: float | None, now: float, warn_days: int) -> str | None:
    """'certificate expires in 5 days (2026-11-29)' within ``warn_days`` of expiry."""
    if not_after is None or not_after - now > warn_days * DAY:
        return None
    left = not_after - now
    if left < DAY:
        hours = max(1, int(left // 3600))
        when = f"{hours} hour{'s' if hours != 1 else ''}"
    else:
        days = round(left / DAY)
        when = f"{days} day{'s' if days != 1 else ''}"
    return f"certificate expires in {when} ({day(not_after)})"


def parse(raw: bytes) -> dict[str, dict[str, dict[str, Any]]]:
    """tofu.json's bytes as node -> probe -> {fingerprint, not_after, first_seen}, or
    ``ownfile.Bad``."""
    data = of.obj(of.parse(raw), "tofu")
    if data.get("version") != TOFU_VERSION:
        raise of.Bad(f"unknown version {str(data.get('version'))[:40]!r}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for node, probes in of.obj(data.get("fingerprints"), "fingerprints").items():
        where = f"fingerprints.{node}"
        out[node] = {}
        for probe, raw_entry in of.obj(probes, where).items():
            entry = of.obj(raw_entry, f"{where}.{probe}")
            of.text(entry.get("fingerprint"), f"{where}.{probe}.fingerprint")
            for key in ("not_after", "first_seen"):
                if entry.get(key) is not None:
                    of.text(entry[key], f"{where}.{probe}.{key}")
            out[node][probe] = entry
    return out


def _parse_iso(text: object) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


@dataclass
class ProbeContext:
    """What the probes of one round share: the certificates first seen (TOFU).

    ``tofu`` maps node name -> probe name -> {fingerprint, not_after, first_seen}; probes
    read and learn under ``lock``; ``save`` writes what was learned (non-dry runs only).
    """

    state_dir: Path | None = None
    tofu: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    learned: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return (self.state_dir or Path(".")) / TOFU_FILE

    @classmethod
    def load(cls, state_dir: Path, readonly: bool = False) -> ProbeContext:
        """Read tofu.json; a missing file is a first use. A damaged one (unreadable,
        garbage, JSON of the wrong shape) is set aside as ``tofu.json.bad-<UTC time>``
        (unless ``readonly``) with a warning, and fingerprints are learned anew."""
        context = cls(state_dir)
        path = context.path
        try:
            context.tofu = parse(path.read_bytes())
            return context
        except FileNotFoundError:
            return context
        except OSError as exc:
            why = f"cannot read ({exc.strerror or exc})"
        except of.Bad as exc:
            why = f"unreadable ({exc})"
        if readonly:
            warning = f"{path}: {why}; a real run sets it aside"
        else:
            warning = (
                f"{path}: {why}; {of.set_aside(path)}: certificates are trusted anew on first use"
            )
        log.warning(warning)
        context.warnings.append(warning)
        return context

    def save(self) -> None:
        """Write the fingerprints if this round learned any."""
        if not self.learned or self.state_dir is None:
            return
        # Under the lock: the daemon's overlapping probe rounds share one context, and
        # atomic_write's temp file has one name.
        with self.lock:
            data = {"version": TOFU_VERSION, "fingerprints": self.tofu}
            text = json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"
            self.state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, text, mode=0o644)
            self.learned = False

    def trust(
        self,
        node: str,
        probe: str,
        fp: str,
        not_after: float | None,
        now: float,
        warn_days: int,
    ) -> tuple[str, str | None]:
        """Trust on first use: (a note for the detail, a warning), or Untrusted."""
        entry = {
            "fingerprint": fp,
            "not_after": None if not_after is None else iso(not_after),
            "first_seen": iso(now),
        }
        with self.lock:
            known = self.tofu.setdefault(node, {})
            old = known.get(probe)
            if old is None:
                known[probe] = entry
                self.learned = True
                return f"TOFU: first use, learned {short(fp)}", None
            if old["fingerprint"] == fp:
                return "", None
            old_end = _parse_iso(old.get("not_after"))
            if old_end is not None and old_end - now <= warn_days * DAY:
                # The old certificate was at its end: a renewal, not an impostor.
                known[probe] = entry
                self.learned = True
                why = (
                    "the old one expired"
                    if old_end <= now
                    else f"the old one was to expire on {day(old_end)}"
                )
                return "", f"certificate changed ({why}): now {short(fp)}"
        raise Untrusted(
            f"TLS: certificate changed since first seen (TOFU): {short(fp)}; "
            f"if expected, remove the entry from {self.path}"
        )
