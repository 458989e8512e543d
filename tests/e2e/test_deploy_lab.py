"""kissha deploy over real SSH on the lab: an sshd per node, in the node's namespace on
its lab address, with a key made here; deploy runs from the client namespace.

The lab's nodes share one file system, so each node gets its own view through
[deploy] root = "DIR/{node}": every path deploy reads or writes on a node is under that
node's own directory, and one node's deploy cannot touch the other's files. Reloads are
``echo``s and nginx -t is skipped under the prefix: test_deploy_fresh.py deploys to nodes
with their own mount namespace (lab/sshnode.py), where the servers really run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kissha.core import zonefile
from lab.netlab import Lab
from tests.deploy.test_deploy_zones import ZONE, _fail_over_to_blowfish, _masters, _serial

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
SRC = Path(__file__).parent.parent / "render" / "src"


def _sshd(lab: Lab, name: str, tmp: Path, pubkey: Path) -> subprocess.Popen[bytes]:
    d = tmp / "sshd" / name
    d.mkdir(parents=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")],
        check=True, timeout=30,
    )  # fmt: skip
    (d / "authorized_keys").write_text(pubkey.read_text())
    (d / "sshd_config").write_text(
        f"ListenAddress {lab.address(name, 'ipv4')}\nPort 22\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    log = (d / "sshd.log").open("ab")
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(name), "/usr/sbin/sshd", "-D", "-e",
         "-f", str(d / "sshd_config")],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _listening(lab: Lab, name: str) -> bool:
    probe = "import socket,sys; socket.create_connection((sys.argv[1], 22), 1).close()"
    done = lab.exec("client", [sys.executable, "-c", probe, lab.address(name, "ipv4")])
    return done.returncode == 0


def test_deploy_over_ssh(lab: Lab, tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
        check=True, timeout=30,
    )  # fmt: skip
    servers = [_sshd(lab, n, tmp_path, tmp_path / "id.pub") for n in NODES]
    try:
        deadline = time.monotonic() + 10
        while not all(_listening(lab, n) for n in NODES) and time.monotonic() < deadline:
            time.sleep(0.1)
        (tmp_path / "zones").mkdir()
        for zone in (SRC / "zones").iterdir():
            (tmp_path / "zones" / zone.name).write_text(zone.read_text())
        a, b = (lab.address(n, "ipv4") for n in NODES)
        config = tmp_path / "kissha.toml"
        config.write_text(
            (SRC / "debian.toml")
            .read_text()
            .replace(
                'flavour = "debian"',
                f'flavour = "debian"\nroot = "{tmp_path}/root/{{node}}"\n'
                f'hosts = {{ fishfinger = "{a}", blowfish = "{b}" }}\n'
                f'ssh_key = "{tmp_path}/id"\nknown_hosts = "{tmp_path}/known_hosts"\n'
                "[deploy.reload]\n"
                + "".join(
                    f'"{s}" = ["sh", "-c", "echo {s} >> {{root}}/reloads"]\n'
                    for s in ("nsd", "nginx", "molly-brown@kissha", "systemd")
                ),
            )
        )

        def deploy(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "kissha", "-c", str(config), "deploy", *args]
            return lab.exec("client", argv, timeout=120)

        dry = deploy("--dry-run")
        assert dry.returncode == 1, dry.stdout + dry.stderr
        assert "+Welcome to fishfinger.example.org!" in dry.stdout
        assert not (tmp_path / "root").exists()

        first = deploy()
        assert first.returncode == 1, first.stdout + first.stderr
        for name in NODES:
            root = tmp_path / "root" / name
            index = root / f"var/www/{name}.example.org/index.txt"
            assert index.read_text() == f"Welcome to {name}.example.org!\n"
            assert (root / "reloads").read_text().split() == [
                "nsd", "nginx", "molly-brown@kissha", "systemd"
            ]  # fmt: skip
            (root / "reloads").unlink()

        second = deploy()
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count(": no change") == 2
        assert not list((tmp_path / "root").rglob("reloads"))

        # A zone changed in the source after fishfinger's kissha failed over to blowfish:
        # deployed over SSH with the marks kept at blowfish and a newer serial.
        fish = tmp_path / "root/fishfinger"
        _fail_over_to_blowfish(fish)
        before = (fish / ZONE).read_text()
        source = tmp_path / "zones/example.org.zone"
        source.write_text(source.read_text() + 'txt      IN TXT "added"\n')
        zoned = deploy()
        assert zoned.returncode == 1, zoned.stdout + zoned.stderr
        after = (fish / ZONE).read_text()
        assert 'IN TXT "added"' in after
        assert _masters(after) == {"203.0.113.20", "2001:db8::20"}
        assert zonefile.serial_gt(_serial(after), _serial(before))
        assert _masters((tmp_path / "root/blowfish" / ZONE).read_text()) == {
            "203.0.113.10", "2001:db8::10"
        }  # fmt: skip
        for name in NODES:
            assert (tmp_path / "root" / name / "reloads").read_text().split() == ["nsd"]
            (tmp_path / "root" / name / "reloads").unlink()
        again = deploy()
        assert again.returncode == 0, again.stdout + again.stderr

        # kissha publish over SSH: every site's content, then only what changed.
        (tmp_path / "www/example.org").mkdir(parents=True)
        (tmp_path / "www/example.org/index.html").write_text("<h1>hello</h1>\n")
        (tmp_path / "www/example.org/big.bin").write_bytes(bytes(range(256)) * 64)
        config.write_text(
            config.read_text().replace("[deploy]\n", f'[deploy]\nweb_source = "{tmp_path}/www"\n')
        )

        def publish() -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "kissha", "-c", str(config), "publish"]
            return lab.exec("client", argv, timeout=120)

        published = publish()
        assert published.returncode == 1, published.stdout + published.stderr
        assert published.stdout.count("2 file(s) changed") == 2
        for name in NODES:
            big = tmp_path / "root" / name / "var/www/example.org/big.bin"
            assert big.read_bytes() == bytes(range(256)) * 64
        (tmp_path / "www/example.org/index.html").write_text("<h1>hello again</h1>\n")
        republished = publish()
        assert republished.returncode == 1, republished.stdout + republished.stderr
        assert republished.stdout.count("1 file(s) changed") == 2
        assert "big.bin" not in republished.stdout
        assert publish().returncode == 0

        # One node unreachable: the other is still deployed, the report names it.
        servers[0].terminate()
        servers[0].wait(10)
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "index.txt.j2").write_text("Welcome to {{ node.fqdn }}!!\n")
        config.write_text(
            config.read_text().replace(
                "[deploy]\n", f'[deploy]\ntemplates = "{tmp_path}/templates"\n'
            )
        )
        third = deploy()
        assert third.returncode == 5, third.stdout + third.stderr
        assert "fishfinger: FAILED" in third.stdout
        assert "blowfish: 2 file(s) changed" in third.stdout  # index.txt, kissha.toml
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
