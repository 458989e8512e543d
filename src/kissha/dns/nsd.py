"""nsd: validate with nsd-checkzone (in parallel), reload once with nsd-control."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kissha.dns.filezones import FileZoneServer
from kissha.errors import ApplyFailed, EnvError

# "[2026-11-24 19:21:41.954] nsd-checkzone[21841]: error: ": time and pid vary per run.
_LOG_PREFIX = re.compile(r"^\[[^\]]*\] [\w.-]+\[\d+\]: ")


class NsdServer(FileZoneServer):
    """nsd loads zone files; ``nsd-control reload`` re-reads those whose mtime changed.

    nsd-control prints "ok" even when a zone file is broken (nsd then answers SERVFAIL),
    so files are checked before they are installed and answers are verified after.
    """

    def check(self, items: Sequence[tuple[str, Path]]) -> dict[str, str]:
        # nsd-checkzone costs ~3 ms, most of it process start-up: run one per CPU at once.
        errors: dict[str, str] = {}
        width = max(2, (os.cpu_count() or 1) * 2)
        running: list[tuple[str, subprocess.Popen[bytes]]] = []
        queue = list(items)

        def reap(zone: str, proc: subprocess.Popen[bytes]) -> None:
            try:
                out, _ = proc.communicate(timeout=self.dns.command_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                errors[zone] = f"{self.dns.checkzone[0]} timed out"
                return
            if proc.returncode != 0:
                text = [_LOG_PREFIX.sub("", t) for t in out.decode(errors="replace").splitlines()]
                errors[zone] = " | ".join(t for t in text[:3] if t) or (
                    f"exit status {proc.returncode}"
                )

        while queue or running:
            while queue and len(running) < width:
                zone, path = queue.pop(0)
                argv = [*self.dns.checkzone, zone.rstrip(".") or ".", str(path)]
                try:
                    proc = subprocess.Popen(
                        argv,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        cwd=self.dns.zones_dir,
                    )
                except OSError as exc:
                    for _, running_proc in running:
                        running_proc.kill()
                        running_proc.communicate()
                    raise EnvError(
                        f"{argv[0]}: cannot run it (dns.checkzone): {exc.strerror or exc}"
                    ) from None
                running.append((zone, proc))
            reap(*running.pop(0))
        return errors

    def tools(self) -> list[tuple[str, str]]:
        return [("dns.checkzone", self.dns.checkzone[0]), ("dns.control", self.dns.control[0])]

    def reload(self, zones: Sequence[str] | None = None) -> None:
        """``nsd-control reload`` reads every changed file; with ``zones``, one
        ``reload ZONE`` each (~10 ms a zone) reads only those."""
        for zone in [None] if zones is None else zones:
            self._control("reload", *([] if zone is None else [zone.rstrip(".") or "."]))

    def _control(self, *args: str) -> None:
        argv = [*self.dns.control, *args]
        try:
            proc = subprocess.run(
                argv, capture_output=True, timeout=self.dns.command_timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ApplyFailed(f"{' '.join(argv)} timed out") from None
        except OSError as exc:
            raise ApplyFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        if proc.returncode != 0 or not output.startswith("ok"):
            first = output.splitlines()[0] if output else f"exit status {proc.returncode}"
            raise ApplyFailed(f"nsd reload failed: {first}")
