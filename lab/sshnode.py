"""A lab node reached over SSH, with a file system and a host name of its own.

The lab's network namespaces separate the network only: every node would otherwise
write the same /etc/nsd/nsd.conf. An SshNode runs the node's sshd (openssh-server, its
own config and host key) inside the node's network namespace **and** a new mount and UTS
namespace (``unshare --mount --uts --propagation private``) in which:

- /etc, /var and /usr/local are overlays: the machine's directories below, read-only in
  effect, and the node's own upper directory above, where everything written goes;
- /run is a fresh tmpfs (pid files, nsd's control socket, sshd's privilege separation
  directory);
- the host name is the node's name (kissha certs and notify tell which node they run on
  from it).

Everything an SSH session runs, and every daemon it starts (nsd, nginx, molly-brown via
the lab's systemctl stand-in, lab/systemctl, installed as /usr/local/bin/systemctl), sees
that node's files only, at their real paths: a deploy writes /etc/nsd/nsd.conf with no
prefix, and nothing of the machine's own /etc or /var changes. The test reads a node's
files through /proc/PID/root (``path``) and runs commands "on the node" with nsenter
into sshd's namespaces (``exec``), as an SSH session would see them.

``stop`` kills, by PID, every process in the node's mount namespace (the daemons started
over SSH included); the namespace and its mounts vanish with the last of them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kissha

OVERLAID = ("etc", "var", "usr/local")
START_TIMEOUT = 10.0
LAB = Path(__file__).resolve().parent
# What an SSH session's PATH is on Debian: /usr/local first, so the stand-in systemctl wins.
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class SshNode:
    lab: Any  # lab.netlab.Lab
    name: str
    root: Path  # its sshd config, host key, and the overlays' upper and work directories
    process: subprocess.Popen[bytes] | None = None
    _mnt: str = field(default="", repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, authorized_key: Path) -> SshNode:
        self.root.mkdir(parents=True)
        host_key = self.root / "host"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
            check=True,
            timeout=30,
        )
        (self.root / "authorized_keys").write_text(authorized_key.read_text())
        config = self.root / "sshd_config"
        config.write_text(
            f"ListenAddress {self.lab.address(self.name, 'ipv4')}\nPort 22\n"
            f"HostKey {host_key}\nAuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            "PidFile /run/sshd.pid\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        mounts = []
        for d in OVERLAID:
            upper, work = self.root / "upper" / d, self.root / "work" / d
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            options = f"lowerdir=/{d},upperdir={upper},workdir={work}"
            mounts.append(f"mount -t overlay overlay -o {shlex.quote(options)} /{d}")
        script = " && ".join(
            [
                *mounts,
                "mount -t tmpfs -o mode=755 tmpfs /run",
                "mkdir -p /run/sshd",
                f"hostname {shlex.quote(self.name)}",
                f"exec /usr/sbin/sshd -D -e -f {shlex.quote(str(config))}",
            ]
        )
        with (self.root / "sshd.log").open("ab") as log:
            # ip netns exec and unshare exec their command, and so does sh: the PID is sshd's.
            self.process = subprocess.Popen(
                [
                    *self.lab._in(self.name),
                    "unshare", "--mount", "--uts", "--propagation", "private",
                    "sh", "-c", script,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._await()
        self._mnt = os.readlink(f"/proc/{self.pid}/ns/mnt")
        self._install()
        return self

    def _await(self) -> None:
        assert self.process is not None
        probe = "import socket,sys; socket.create_connection((sys.argv[1], 22), 1).close()"
        address = self.lab.address(self.name, "ipv4")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            done = self.lab.exec("client", [sys.executable, "-c", probe, address])
            if done.returncode == 0:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "sshd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"sshd on {self.name} did not start:\n{tail}")
            time.sleep(0.1)

    def _install(self) -> None:
        """What "install kissha on the node" is in the lab: /usr/local/bin/kissha runs
        this checkout's kissha with this Python, and the lab's systemctl stand-in."""
        src = Path(kissha.__file__).resolve().parent.parent
        bin_ = self.path("/usr/local/bin")
        bin_.mkdir(parents=True, exist_ok=True)
        (bin_ / "kissha").write_text(
            f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(src))} "
            f'exec {shlex.quote(sys.executable)} -m kissha "$@"\n'
        )
        (bin_ / "kissha").chmod(0o755)
        (bin_ / "systemctl").write_bytes((LAB / "systemctl").read_bytes())
        (bin_ / "systemctl").chmod(0o755)

    def path(self, path: str) -> Path:
        """A path as the node sees it (through its sshd's root)."""
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def exec(self, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run argv on the node: in sshd's network, mount and UTS namespaces, with an SSH
        session's PATH; never raises on exit."""
        env = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )

    def pids(self) -> list[int]:
        """Every process in the node's mount namespace (sshd, its sessions, daemons)."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns/mnt") == self._mnt:
                        out.append(int(entry.name))
        return out

    def stop(self) -> None:
        """SIGTERM every process of the node, SIGKILL what is left after 3 s."""
        if self.process is None:
            return
        if self._mnt:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                pids = self.pids()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + 3
                while self.pids() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not self.pids():
                    break
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
