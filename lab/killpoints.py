"""Kill kissha at every system call that changes files, and at each process it starts.

Used by ``bench/run-killpoints`` (every point) and the test suite (a sample). On a
loopback site (real nsd) whose master is down, so that every run fails over:

1. a clean run from the starting state gives the expected zone files;
2. a traced run lists kissha's calls of each system call of interest;
3. for each (system call, K): reset to the starting state, run kissha under
   ``strace -e inject=SYSCALL:signal=KILL:when=K`` (SIGKILL at exactly that call),
   then a normal run (the recovery), and check: every zone file is the expected one,
   byte for byte, with its owner and mode; no temp file, backup or journal is left;
   nsd serves every file's serial and the new addresses on each address.

Only kissha's own process (its main thread) is traced (no ``-f``): the spawns of
nsd-checkzone and nsd-control are kill points in kissha (clone/vfork), the reload's
among them, and so are the verification sockets (connect).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.site import LoopbackSite

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger preferred, as the zones start
SYSCALLS = (
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "fsync",
    "fdatasync",
    "syncfs",
    "clone",
    "clone3",
    "vfork",
    "connect",
)
OWNER, MODE = (4321, 4321), 0o640


@dataclass(frozen=True)
class Outcome:
    syscall: str
    k: int
    killed: bool  # the injected run died of SIGKILL (not every call is reached)
    problems: tuple[str, ...]  # what the check after recovery found wrong


class KillPoints:
    """A loopback site in the starting state, and the checks after each kill."""

    def __init__(self, site: LoopbackSite) -> None:
        self.site = site
        self.pristine = site.root / "pristine"
        site.config_path.write_text(site.config_text(failures_before_demotion=1))
        for z in site.zones:
            path = site.zone_path(z)
            os.chown(path, *OWNER)
            path.chmod(MODE)
        r = site.kissha("failover", now=NOW)  # learn the health, validate the skeletons
        assert r.returncode == 0, r.stdout + r.stderr
        site.stop_web("fishfinger")
        shutil.rmtree(self.pristine, ignore_errors=True)
        (self.pristine / "zones").mkdir(parents=True)
        for z in site.zones:
            shutil.copy2(site.zone_path(z), self.pristine / "zones" / f"{z}.zone")
        shutil.copytree(site.root / "state", self.pristine / "state")
        r = site.kissha("failover", now=NOW)
        assert r.returncode == 1, r.stdout + r.stderr
        self.expected = self._digests()
        self.reset()

    def _digests(self) -> dict[str, str]:
        return {
            z: hashlib.sha256(self.site.zone_path(z).read_bytes()).hexdigest()
            for z in self.site.zones
        }

    def run_argv(self) -> list[str]:
        config = str(self.site.config_path)
        return [sys.executable, "-m", "kissha", "-c", config, "failover", "--now", NOW]

    def reset(self) -> None:
        """The starting state: old zone files (fresh mtimes), old state, nsd serving them."""
        zones, state = self.site.root / "zones", self.site.root / "state"
        for p in zones.iterdir():
            if p.name.startswith(".") and "kissha" in p.name:
                p.unlink()
        for z in self.site.zones:
            src, dst = self.pristine / "zones" / f"{z}.zone", self.site.zone_path(z)
            tmp = dst.with_name(dst.name + ".reset")
            shutil.copy2(src, tmp)
            os.chown(tmp, *OWNER)
            os.replace(tmp, dst)
            os.utime(dst)
        shutil.rmtree(state)
        shutil.copytree(self.pristine / "state", state)
        assert self.site.nsd is not None
        subprocess.run(
            [*self.site.nsd.control_argv, "reload"], check=True, timeout=30, capture_output=True
        )
        serial = 1700000000
        deadline = time.monotonic() + 10
        while any(self.site.serial(z) != serial for z in self.site.zones):
            assert time.monotonic() < deadline, "nsd did not load the starting state"
            time.sleep(0.02)

    def count(self) -> Counter[str]:
        """kissha's calls of each system call of interest in one whole run."""
        trace = self.site.root / "trace.txt"
        subprocess.run(
            ["strace", "-o", str(trace), "-e", "trace=" + ",".join(SYSCALLS), *self.run_argv()],
            capture_output=True,
            timeout=120,
            check=False,
        )
        calls: Counter[str] = Counter()
        for line in trace.read_text().splitlines():
            name = line.split("(", 1)[0].strip()
            if name in SYSCALLS:
                calls[name] += 1
        self.reset()
        return calls

    def _killed_run(self, syscall: str, k: int) -> bool:
        inject = f"inject={syscall}:signal=KILL:when={k}"
        r = subprocess.run(
            ["strace", "-o", "/dev/null", "-e", f"trace={syscall}", "-e", inject, *self.run_argv()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return r.returncode in (-9, 128 + 9)  # strace dies of its tracee's signal

    def run(
        self, points: Sequence[tuple[str, int]] | None = None, then: tuple[str, int] | None = None
    ) -> list[Outcome]:
        """Kill at ``points`` (default: every call counted in a whole run); with ``then``,
        kill each recovery run too, at that point."""
        if points is None:
            calls = self.count()
            points = [(name, k) for name in SYSCALLS for k in range(1, calls[name] + 1)]
        return [self.kill_at(name, k, then) for name, k in points]

    def kill_at(self, syscall: str, k: int, then: tuple[str, int] | None = None) -> Outcome:
        """Kill the run at the k-th ``syscall``; with ``then``, kill the recovery run too
        (a second failure) before the final, normal run."""
        killed = self._killed_run(syscall, k)
        if then is not None:
            self._killed_run(*then)
        rec = self.site.kissha("failover", now=NOW)
        problems = list(self.check())
        if rec.returncode not in (0, 1):
            problems.insert(0, f"recovery run exited {rec.returncode}: {rec.stdout[-400:]}")
        for line in rec.stdout.splitlines():
            if " kept at " in line and not Path(line.rsplit(" kept at ", 1)[1]).exists():
                problems.append(f"names a backup that does not exist: {line}")
        name = syscall if then is None else f"{syscall}, then {then[0]} #{then[1]}"
        out = Outcome(name, k, killed, tuple(problems))
        self.reset()
        return out

    def check(self) -> Iterator[str]:
        site = self.site
        for z in site.zones:
            path = site.zone_path(z)
            st = path.stat()
            if hashlib.sha256(path.read_bytes()).hexdigest() != self.expected[z]:
                yield f"{path.name}: not the expected new file"
            if (st.st_uid, st.st_gid) != OWNER or st.st_mode & 0o7777 != MODE:
                yield f"{path.name}: owner/mode {st.st_uid}:{st.st_gid} {st.st_mode & 0o7777:o}"
        for p in (site.root / "zones").iterdir():
            if "kissha" in p.name:
                yield f"{p.name}: left behind"
        if (site.root / "state" / "journal.json").exists():
            yield "journal.json: left behind"
        want = {z: _file_serial(site, z) for z in site.zones}
        for server in ("127.0.0.1", "::1"):
            for z in site.zones:
                served = site.serial(z, server)
                if served != want[z]:
                    yield f"{server}: {z} serves serial {served}, the file says {want[z]}"
                if site.answers(f"www.{z}", "A", server) != {"127.0.0.12"}:
                    yield f"{server}: www.{z} A is not the new master"


def _file_serial(site: LoopbackSite, zone: str) -> int:
    for line in site.zone_path(zone).read_text().splitlines():
        if line.strip().endswith("; serial"):
            return int(line.split()[0])
    raise AssertionError(f"{zone}: no serial line")
