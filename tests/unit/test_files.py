"""kissha.files and filezones' file steps: temp files made durable in a batch, backups."""

from __future__ import annotations

import os
from pathlib import Path

from kissha.dns.filezones import _link
from kissha.files import make_durable, write_temp


def test_temp_files_written_without_fsync_are_made_durable_in_one_batch(
    tmp_path: Path,
) -> None:
    zone = tmp_path / "example.org.zone"
    zone.write_text("old\n")
    zone.chmod(0o640)
    temps = [write_temp(zone, b"new\n", like=zone, durable=False)]
    other = tmp_path / "sub"
    other.mkdir()
    temps.append(write_temp(other / "b.zone", b"b\n", durable=False))
    make_durable(temps)  # one syncfs per directory on Linux; no error, nothing renamed
    assert [t.read_bytes() for t in temps] == [b"new\n", b"b\n"]
    assert temps[0].name == ".example.org.zone.kissha-new"
    assert os.stat(temps[0]).st_mode & 0o777 == 0o640  # the mode of the file it replaces
    assert zone.read_text() == "old\n"


def test_a_backup_left_behind_is_replaced_by_the_link(tmp_path: Path) -> None:
    zone = tmp_path / "z.zone"
    zone.write_text("current\n")
    backup = tmp_path / ".z.zone.kissha-old"
    backup.write_text("left behind by an older run\n")
    _link(zone, backup)
    assert backup.read_text() == "current\n"
    assert os.stat(backup).st_ino == os.stat(zone).st_ino
    fresh = tmp_path / ".y.kissha-old"
    _link(zone, fresh)
    assert os.stat(fresh).st_ino == os.stat(zone).st_ino
