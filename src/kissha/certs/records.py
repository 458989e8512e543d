"""state_dir/certs.json: what ``kissha certs`` remembers per name between runs.

Read through kissha.ownfile, shape-checked member by member. A file that is no JSON
object of this layout is set aside as ``certs.json.bad-<UTC time>`` and starts afresh.
A damaged member of one name's record is dropped alone and the rest kept: the
failures and retry time are the back-off against the CA's rate limits, and losing them
for every name because one ``window`` is damaged would ask the CA at once for all of
them. A file with damaged members is also set aside (the cleaned records written in its
place at once), so whoever wants to can look at what it held.

No cryptography here: status, the page and metrics read this file every minute.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kissha import ownfile as of

log = logging.getLogger(__name__)
NAME = "certs.json"
VERSION = 1
_TIMES = ("not_after", "due_at", "checked", "retry_at", "ari_next")
_TEXTS = ("kind", "issuer", "error", "serial")
_INFO_TIMES = ("not_before", "not_after")


def fresh() -> dict[str, Any]:
    return {"version": VERSION, "names": {}}


def load(state_dir: Path, readonly: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The records, each member well-formed, and the warnings (one line each)."""
    path = state_dir / NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return fresh(), []
    except OSError as exc:
        return fresh(), [f"certs: {path}: cannot read ({exc.strerror or exc}); starting afresh"]
    dropped: list[str] = []
    try:
        records = parse(raw, dropped)
    except of.Bad as exc:
        if readonly:
            return fresh(), [f"certs: {path}: unreadable ({exc}); a real run sets it aside"]
        warning = f"certs: {path}: unreadable ({exc}); {of.set_aside(path)}; starting afresh"
        log.warning(warning)
        return fresh(), [warning]
    if not dropped:
        return records, []
    what = (
        f"{len(dropped)} damaged member(s) dropped ({dropped[0]}{', ...' if dropped[1:] else ''})"
    )
    if readonly:
        return records, [f"certs: {path}: {what}; a real run sets it aside"]
    aside = of.set_aside(path)
    try:
        save(state_dir, records)  # the back-off kept even if this run stops early
    except OSError as exc:
        aside += f"; cannot write the rest ({exc.strerror or exc})"
    warning = f"certs: {path}: {what}; {aside}; the rest kept"
    log.warning(warning)
    return records, [warning]


def parse(raw: bytes, dropped: list[str]) -> dict[str, Any]:
    """certs.json's bytes as records; damaged members of a name's record are left out
    and named in ``dropped``; a file that is not of this layout at all is ``Bad``."""
    data = of.obj(of.parse(raw), "certs")
    if data.get("version") != VERSION:
        raise of.Bad(f"unknown version {str(data.get('version'))[:40]!r}")
    out: dict[str, Any] = {"version": VERSION, "names": {}}
    ari = data.get("ari")
    if isinstance(ari, bool):
        out["ari"] = ari
    elif ari is not None:
        dropped.append("ari: not a boolean")
    for name, rec in of.opt_obj(data, "names", "").items():
        where = f"names.{name}"
        if not isinstance(rec, dict):
            dropped.append(str(of.Bad(f"{where}: not an object")))  # one line, escaped
            continue
        out["names"][name] = _record(rec, where, dropped)
    return out


def _record(rec: dict[str, Any], where: str, dropped: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        try:
            checked = _member(key, value, f"{where}.{key}")
        except of.Bad as exc:
            dropped.append(str(exc))
            continue
        if checked is not _UNKNOWN:
            out[key] = checked
    return out


_UNKNOWN = object()


def _member(key: str, v: Any, where: str) -> Any:
    if v is None and key in ("not_after", "due_at", "file", "info"):
        return None  # written so: no certificate, or a placeholder
    if key in _TIMES:
        return of.timestamp(v, where)
    if key in _TEXTS:
        return of.text(v, where)
    if key == "failures":
        return of.count(v, where)
    if key == "window":
        pair = of.seq(v, where)
        if len(pair) != 2:
            raise of.Bad(f"{where}: not a start and an end")
        return [of.timestamp(t, f"{where}[]") for t in pair]
    if key == "file":
        sig = of.seq(v, where)
        if len(sig) != 6:
            raise of.Bad(f"{where}: not a file signature")
        return [_integer(n, where) for n in sig]
    if key == "info":
        return _info(of.obj(v, where), where)
    return _UNKNOWN  # another version's: nothing reads it


def _integer(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise of.Bad(f"{where}: not an integer")
    return v


def _info(v: dict[str, Any], where: str) -> dict[str, Any]:
    """A CertInfo's fields, exactly: CertInfo(**info) cannot fail on it."""
    known = {"not_before", "not_after", "issuer", "placeholder", "serial"}
    if set(v) - known or not {"not_before", "not_after", "issuer"} <= set(v):
        raise of.Bad(f"{where}: not a certificate's summary")
    out: dict[str, Any] = {k: of.timestamp(v[k], f"{where}.{k}") for k in _INFO_TIMES}
    out["issuer"] = of.text(v["issuer"], f"{where}.issuer")
    if "placeholder" in v:
        out["placeholder"] = of.boolean(v["placeholder"], f"{where}.placeholder")
    if "serial" in v:
        out["serial"] = of.text(v["serial"], f"{where}.serial")
    return out


def save(state_dir: Path, records: dict[str, Any]) -> None:
    from kissha.files import atomic_write

    atomic_write(
        state_dir / NAME,
        json.dumps(records, indent=1, sort_keys=True).encode() + b"\n",
        mode=0o644,
    )
