"""File safety: atomic writes that keep owner and mode, directory fsync, the run lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kissha.errors import LockHeld

TMP_SUFFIX = ".kissha-new"
BACKUP_SUFFIX = ".kissha-old"


def through_links(path: Path) -> Path:
    """The file a write to ``path`` must replace: the final target of a symbolic link
    (an operator who links zone files into place keeps the link), else ``path``.

    The temp file goes beside the target, so ``os.replace`` stays within one directory
    (one file system) and stays atomic."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def hidden_sibling(path: Path, suffix: str) -> Path:
    """``dir/.name<suffix>``: hidden, so zone globs and nsd never pick it up."""
    return path.with_name(f".{path.name}{suffix}")


def write_temp(
    path: Path, data: bytes, like: Path | None = None, mode: int = 0o644, durable: bool = True
) -> Path:
    """Write ``data`` to a hidden temp file beside ``path``, with the owner and mode of
    ``like`` (when it exists), fsynced (unless ``durable`` is False: then the caller
    makes a batch of them durable at once with ``make_durable``). The caller installs it
    with os.replace."""
    tmp = hidden_sibling(path, TMP_SUFFIX)
    st = None
    if like is not None:
        with contextlib.suppress(FileNotFoundError):
            st = like.stat()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if st is not None:
            # chown first: changing the owner can clear set-id bits that fchmod then restores.
            if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, st.st_mode & 0o7777)
        else:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            # write() and fsync() name no file (ENOSPC, EIO): say which one it was
            raise OSError(exc.errno, exc.strerror, str(tmp)) from exc
        raise
    os.close(fd)
    return tmp


def make_durable(files: Sequence[Path]) -> None:
    """Flush files written with ``write_temp(durable=False)`` to disk, before they are
    renamed into place: the guarantee of one fsync each, which it replaces.

    On Linux one syncfs(2) per directory: writing 1,000 zone files cost 0.15-0.25 s with
    one fsync each and 0.09-0.13 s with one syncfs after them (bench/fs in issue 13's
    notes; the journal commit each fsync waits for is shared). Linux reports writeback
    errors from syncfs since 5.8. Elsewhere (OpenBSD has no syncfs, and its sync(2) does
    not wait), or if syncfs cannot be called, each file is fsynced."""
    directories: dict[Path, list[Path]] = {}
    for f in files:
        directories.setdefault(f.parent, []).append(f)
    for directory, inside in directories.items():
        if not _syncfs(directory):
            for f in inside:
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, str(f)) from exc
                finally:
                    os.close(fd)


def _syncfs(directory: Path) -> bool:
    """syncfs(2) on the file system of ``directory``; False if there is none to call."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: only a change of zone files pays for it

    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        return False
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(directory))
    finally:
        os.close(fd)
    return True


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its owner and mode if it exists
    (through a symbolic link: its target is replaced, the link stays)."""
    real = through_links(path)
    tmp = write_temp(real, data, like=real, mode=mode)
    try:
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(real.parent)


class RunLock:
    """An exclusive, non-blocking lock held for a whole run (flock on a file).

    The kernel drops it when the process dies, so a crash never leaves a stale lock.
    The file's content (the holder's pid) is only for the message: whatever it holds
    (nothing yet, garbage), a lock held is ``LockHeld`` (exit 4), never a crash.
    """

    PID_TRIES = 3  # the holder writes its pid right after it locks: a short wait for it
    PID_WAIT = 0.01

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        # An OSError opening or locking (a read-only or full file system...) goes up as
        # it is, naming the lock file: an error of the environment, not a held lock.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                pid = self._holder()
                holder = f" (pid {pid})" if pid else ""
                raise LockHeld(f"another kissha run holds {self.path}{holder}") from None
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        # Overwrite, then cut: a reader never sees the file empty between the two.
        data = f"{os.getpid()}\n".encode()
        with contextlib.suppress(OSError):  # the pid is a courtesy; the flock is the lock
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        self._fd = fd
        return self

    def _holder(self) -> int | None:
        """The holder's pid from the file, if it says one; None if it is empty (written
        by an older kissha that truncated first), unreadable or not a pid."""
        for attempt in range(self.PID_TRIES):
            try:
                with self.path.open("rb") as f:
                    first = f.read(32).split(b"\n", 1)[0].strip()
            except OSError:
                return None
            if first.isdigit() and len(first) <= 10:
                return int(first)
            if first or attempt == self.PID_TRIES - 1:
                return None
            time.sleep(self.PID_WAIT)
        return None

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
