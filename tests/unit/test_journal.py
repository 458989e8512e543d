"""The journal of an interrupted run: whatever it holds, recovery undoes it, sets it
aside (no backup: nothing to undo) or refuses with one line (exit 8); never a crash."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kissha.config import DnsConfig
from kissha.dns.filezones import FileZoneServer
from kissha.errors import JournalError

OLD, NEW = b"old zone text\n", b"new zone text\n"


class Files(FileZoneServer):
    """The file side only: recovery never checks or reloads."""

    def check(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        raise AssertionError("recovery checks nothing")

    def reload(self, zones: Sequence[str] | None = None) -> None:
        raise AssertionError("recovery reloads nothing (converge does)")


def server(root: Path) -> Files:
    (root / "zones").mkdir(exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    return Files(DnsConfig("nsd", root / "zones", ("*.zone",)), root / "state")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
journals = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.dictionaries(st.sampled_from(["zones", "pid"]), json_values).map(
        lambda v: json.dumps(v).encode()
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=journals, with_backup=st.booleans())
def test_any_journal_is_undone_set_aside_or_refused(content: bytes, with_backup: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = server(root)
        zone = root / "zones" / "a.zone"
        zone.write_bytes(OLD)
        backup = root / "zones" / ".a.zone.kissha-old"
        if with_backup:
            backup.write_bytes(OLD)
        journal = root / "state" / "journal.json"
        journal.write_bytes(content)
        try:
            done = s.recover()
        except JournalError as exc:
            assert with_backup
            assert "damaged journal" in str(exc) and "\n" not in str(exc)
            assert journal.read_bytes() == content and backup.exists()
        else:
            assert all(isinstance(line, str) for line in done)
            assert not journal.exists()
            assert not backup.exists()  # used, or a finished run's: removed
        assert zone.read_bytes() == OLD


def test_a_journal_undoes_new_files_and_keeps_edited_ones(tmp_path: Path) -> None:
    s = server(tmp_path)
    zones = tmp_path / "zones"
    entries = []
    for name, now in (("new", NEW), ("old", OLD), ("edited", b"edited by hand\n")):
        path = zones / f"{name}.zone"
        path.write_bytes(now)
        backup = zones / f".{name}.zone.kissha-old"
        backup.write_bytes(OLD)
        entries.append({"path": str(path), "backup": str(backup), "old": sha(OLD), "new": sha(NEW)})
    (tmp_path / "state" / "journal.json").write_text(json.dumps({"zones": entries}))
    done = s.recover()
    assert (zones / "new.zone").read_bytes() == OLD
    assert (zones / "old.zone").read_bytes() == OLD
    assert (zones / "edited.zone").read_bytes() == b"edited by hand\n"
    kept = zones / ".edited.zone.kissha-kept"
    assert kept.read_bytes() == OLD
    assert f"{zones / 'edited.zone'}: edited since an interrupted run; left as it is, " in (
        "\n".join(done)
    )
    assert f"the old file kept at {kept}" in "\n".join(done)
    assert sorted(p.name for p in zones.iterdir()) == [
        ".edited.zone.kissha-kept",
        "edited.zone",
        "new.zone",
        "old.zone",
    ]
    assert s.recover() == []  # and the kept file stays, never swept


@pytest.mark.parametrize("content", [b"[]", b"null", b'{"zones": [{"path": 1}]}', b"\xff"])
def test_a_damaged_journal_names_itself_and_the_backup(tmp_path: Path, content: bytes) -> None:
    s = server(tmp_path)
    (tmp_path / "zones" / "a.zone").write_bytes(OLD)
    backup = tmp_path / "zones" / ".a.zone.kissha-old"
    backup.write_bytes(OLD)
    (tmp_path / "state" / "journal.json").write_bytes(content)
    with pytest.raises(JournalError) as e:
        s.recover()
    assert str(e.value).startswith(f"{tmp_path / 'state' / 'journal.json'}: damaged journal")
    assert str(backup) in str(e.value)
    assert e.value.exit_code == 8


@pytest.mark.parametrize("layout", ["plain", "symlink", "table"])
def test_leftovers_beside_every_kind_of_zone_file_are_removed(tmp_path: Path, layout: str) -> None:
    # Recovery finds temp files and backups with one listing of the zones directory when
    # every zone file is a plain file there, and follows links and tables otherwise.
    from kissha.config import ZoneRef

    s = server(tmp_path)
    zones = tmp_path / "zones"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (zones / "plain.zone").write_bytes(OLD)
    if layout == "symlink":
        (elsewhere / "real.zone").write_bytes(OLD)
        (zones / "linked.zone").symlink_to(elsewhere / "real.zone")
        where = elsewhere / ".real.zone"
    elif layout == "table":
        (elsewhere / "t.zone").write_bytes(OLD)
        s = Files(
            DnsConfig("nsd", zones, ("*.zone", ZoneRef("t.", elsewhere / "t.zone"))),
            tmp_path / "state",
        )
        where = elsewhere / ".t.zone"
    else:
        where = zones / ".plain.zone"
    tmp = where.with_name(where.name + ".kissha-new")
    backup = where.with_name(where.name + ".kissha-old")
    tmp.write_bytes(NEW)
    backup.write_bytes(OLD)
    unrelated = zones / ".notes.kissha-new.txt"
    unrelated.write_bytes(b"not ours")
    done = s.recover()
    assert not tmp.exists() and not backup.exists()
    assert unrelated.exists()
    assert any("unfinished temp file removed" in d for d in done)
    assert any("backup of a finished run removed" in d for d in done)
    assert s.recover() == []
