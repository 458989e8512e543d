"""The run lock: a held lock is exit 4 with the holder's pid when the file says one,
whatever the file holds (nothing yet, garbage); never an internal error."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kissha.cli import main
from kissha.errors import LockHeld
from kissha.files import RunLock

CONFIG = """state_dir = "{state}"
default_master = "a"
[nodes.a]
fqdn = "a.example.org"
ipv4 = "127.0.0.11"
[nodes.b]
fqdn = "b.example.org"
ipv4 = "127.0.0.12"
[[health.probes]]
type = "tcp"
port = 9
[dns]
server = "nsd"
zones_dir = "{state}"
zones = "*.zone"
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A lock file held by another open file description (as another process would)."""
    path = tmp_path / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield path
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("content", "holder"),
    [
        (b"4242\n", " (pid 4242)"),
        (b"", ""),  # truncated by its holder, its pid not written yet
        (b"\n", ""),
        (b"\x00\xff\xfe garbage", ""),
        (b"-1\n", ""),
        (b"99999999999999999999999\n", ""),
        (b"12 34\n", ""),
    ],
)
def test_a_held_lock_is_lock_held_whatever_its_file_says(
    held: Path, content: bytes, holder: str
) -> None:
    held.write_bytes(content)
    with pytest.raises(LockHeld) as info, RunLock(held):
        pass
    assert str(info.value) == f"another kissha run holds {held}{holder}"
    assert info.value.exit_code == 4


def test_the_cli_exits_4_with_a_truncated_lock_file(
    held: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = held.parent / "kissha.toml"
    config.write_text(CONFIG.format(state=held.parent))
    held.write_bytes(b"")
    assert main(["-c", str(config), "pin", "a"]) == 4
    err = capsys.readouterr().err
    assert err == f"kissha: another kissha run holds {held}\n"


def test_the_pid_is_overwritten_in_place_never_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.write_bytes(b"1234567890\n")  # a longer pid from an earlier run
    with RunLock(path):
        assert path.read_bytes() == f"{os.getpid()}\n".encode()
    # Another process sees the pid while it is held.
    with RunLock(path):
        code = (
            "import sys\nfrom kissha.files import RunLock\nfrom kissha.errors import LockHeld\n"
            "try:\n    RunLock(__import__('pathlib').Path(sys.argv[1])).__enter__()\n"
            "except LockHeld as e:\n    print(e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    assert out == f"another kissha run holds {path} (pid {os.getpid()})\n"
    # Released with the process (or the context): the next run takes it.
    with RunLock(path):
        pass
