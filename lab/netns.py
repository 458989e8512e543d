"""Network namespaces and the processes in them: ip(8), stopping process groups, last-resort
teardown at interpreter exit and on SIGTERM. Used by the network lab (lab.netlab)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from types import FrameType

COMMAND_TIMEOUT = 30.0
STOP_TIMEOUT = 3.0

Teardown = Callable[[], None]
_live: set[Teardown] = set()
_previous_sigterm: Callable[[int, FrameType | None], object] | int | None = None


def ip(*args: str) -> str:
    """Run ip(8) with args; its stdout, or RuntimeError with its message."""
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def names() -> list[str]:
    """The named network namespaces (`ip netns list` prints "name (id: 3)" or "name")."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT, reap the process."""
    if process.poll() is None:
        _kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    # Sweep the group even after a clean exit, in case a child outlived its parent.
    _kill_group(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


def kill_processes_in(ns: str) -> None:
    """SIGKILL whatever still runs in namespace ns (nsd's children, a timed-out command)."""
    for pid in ip("netns", "pids", ns).split():
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _teardown_all() -> None:
    for teardown in list(_live):
        teardown()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _teardown_all()
    # Then die of SIGTERM as we would have, so that our parent sees the usual status.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def register(teardown: Teardown) -> None:
    """Call teardown at interpreter exit or on SIGTERM unless unregister()ed before."""
    global _previous_sigterm
    if not _live:
        atexit.register(_teardown_all)
        # Take over SIGTERM only if nobody else handles it, and only where Python allows.
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        ):
            _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    _live.add(teardown)


def unregister(teardown: Teardown) -> None:
    global _previous_sigterm
    _live.discard(teardown)
    if not _live:
        atexit.unregister(_teardown_all)
        if _previous_sigterm is not None and signal.getsignal(signal.SIGTERM) == _on_sigterm:
            signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None
