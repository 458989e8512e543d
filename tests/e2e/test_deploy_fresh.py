"""From scratch, the README's way ("Render and deploy: from a fresh Debian"): kissha init
with flags, the edits a user makes, kissha deploy, kissha publish; then each node's own
kissha certs (pebble on the client) and kissha failover, and every site is served.

Each lab node is an SshNode (lab/sshnode.py): its sshd runs in the node's network
namespace and in a mount and UTS namespace of its own, where /etc, /var and /usr/local
are overlays over the machine's and /run is a fresh tmpfs. deploy writes the real paths
(/etc/nsd/nsd.conf, /etc/nginx/sites-enabled/kissha, ...) with no root prefix, and the
servers it starts see only that node's files. There is no systemd in the lab: the node's
/usr/local/bin/systemctl is the lab's stand-in (lab/systemctl), which starts, reloads or
stops nsd, nginx and molly-brown with their own commands, so deploy's default Debian
commands (systemctl enable + reload-or-restart) and the [certs] reload hooks run as
written; the units and timers are installed but nothing runs them: the test runs their
ExecStart lines itself, with --now (the test never depends on the real date).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import kissha
from lab.faults import Family
from lab.netlab import Lab
from lab.pebble import Pebble
from lab.sshnode import SshNode

pytestmark = pytest.mark.e2e

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads
NODES = ("fishfinger", "blowfish")
SITE = "example.org"
NAMES = (SITE, f"www.{SITE}", f"standby.{SITE}")
FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
ROUNDS = 6  # failover rounds at most until the records move (demotion takes 3)


@pytest.fixture
def bare_lab(isolation: None) -> Iterator[Lab]:
    Lab.cleanup_stale()
    with Lab(services=False) as built:
        yield built
    assert not built.teardown_problems, built.teardown_problems
    assert not built.leftovers(), built.leftovers()


def _kissha(lab: Lab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """kissha on the operator's laptop: the client namespace."""
    return lab.exec("client", [sys.executable, "-m", "kissha", *args], timeout=timeout)


def _unit(node: SshNode, unit: str) -> list[str]:
    """The ExecStart of a unit deploy installed on the node, pinned to NOW."""
    text = node.path(f"/etc/systemd/system/kissha-{unit}.service").read_text()
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return [*shlex.split(line.removeprefix("ExecStart=")), "--now", NOW]


def _edit(config: Path, lab: Lab, pebble: Pebble, tmp: Path) -> None:
    """What a user changes in the file kissha init wrote, each as a text edit."""
    text = config.read_text()

    def change(old: str, new: str) -> None:
        nonlocal text
        assert text.count(old) == 1, old
        text = text.replace(old, new)

    # The CA: pebble on the client instead of Let's Encrypt, and trust for its listener.
    change(
        'directory = "letsencrypt"',
        f'directory = "{pebble.directory}"\nca_file = "{pebble.tls_ca}"',
    )
    # The health probe trusts pebble's root (the nodes serve what pebble issued).
    change('type = "https"\n', f'type = "https"\nca_file = "{pebble.issuing_root}"\n')
    # How deploy reaches the nodes (their FQDNs do not resolve on the laptop), and the
    # sites' content for kissha publish.
    a, b = (lab.address(n, "ipv4") for n in NODES)
    change(
        "[deploy]\n",
        f'[deploy]\nhosts = {{ fishfinger = "{a}", blowfish = "{b}" }}\n'
        f'ssh_key = "{tmp}/id"\nknown_hosts = "{tmp}/known_hosts"\n'
        'web_source = "www"\ngemini_source = "gemini"\n',
    )
    config.write_text(text)


def _curl(lab: Lab, name: str, address: str, url: str, ca: Path, *extra: str) -> str:
    port = 443 if url.startswith("https:") else 80
    pinned = f"[{address}]" if ":" in address else address
    argv = ["curl", "--silent", "--show-error", "--max-time", "5", "--cacert", str(ca)]
    argv += ["--resolve", f"{name}:{port}:{pinned}", *extra, url]
    done = lab.exec("client", argv)
    return done.stdout if done.returncode == 0 else f"error: {done.stderr.strip()}"


def test_from_scratch_both_nodes_serve_every_site_with_certs_and_failover(
    bare_lab: Lab, tmp_path: Path
) -> None:
    lab = bare_lab
    started = time.monotonic()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
        check=True, timeout=30,
    )  # fmt: skip
    nodes: dict[str, SshNode] = {}
    pebble = Pebble(
        Path(lab.root) / "pebble",
        listen=lab.address("client", "ipv4"),
        http_port=80,
        dns=f"{lab.address('fishfinger', 'ipv4')}:53",  # fishfinger's nsd, once deployed
        argv_prefix=lab._in("client"),
    )
    try:
        pebble.start()
        for name in NODES:
            nodes[name] = SshNode(lab, name, Path(lab.root) / "nodes" / name)
            nodes[name].start(tmp_path / "id.pub")

        # 1. kissha init, with flags.
        site = tmp_path / "site"
        argv = ["init", "--dir", str(site), "--flavour", "debian", "--gemini"]
        argv += ["--contact", "ops@example.org", "--site", SITE]
        for name in NODES:
            fqdn = f"{name}.{SITE}"
            argv += ["--node", f"{name}={fqdn},{lab.address(name, 'ipv4')},"]
            argv[-1] += lab.address(name, "ipv6")
        done = _kissha(lab, *argv)
        assert done.returncode == 0, done.stdout + done.stderr
        config = site / "kissha.toml"

        # 2. The user's edits, and the sites' content.
        _edit(config, lab, pebble, tmp_path)
        (site / "www" / SITE).mkdir(parents=True)
        (site / "www" / SITE / "index.html").write_text("<h1>example.org</h1>\n")
        (site / "gemini" / SITE).mkdir(parents=True)
        (site / "gemini" / SITE / "index.gmi").write_text("# example.org over Gemini\n")

        # 3. kissha deploy --dry-run (the diff, nothing written), kissha deploy, then
        # kissha publish.
        machine = Path("/etc/nsd/nsd.conf").read_text()
        dry = _kissha(lab, "-c", str(config), "deploy", "--dry-run")
        assert dry.returncode == 1, dry.stdout + dry.stderr
        assert "+++ fishfinger:/etc/nginx/sites-enabled/kissha" in dry.stdout
        for name in NODES:
            assert nodes[name].path("/etc/nsd/nsd.conf").read_text() == machine
            assert not nodes[name].path("/etc/kissha.toml").exists()
        t0 = time.monotonic()
        deployed = _kissha(lab, "-c", str(config), "deploy")
        times = {"deploy from scratch": time.monotonic() - t0}
        assert deployed.returncode == 1, deployed.stdout + deployed.stderr
        for name in NODES:
            assert f"{name}: 10 file(s) changed\n" in deployed.stdout, deployed.stdout
        reloaded = "  reloaded: nsd, nginx, molly-brown@kissha, systemd\n"
        assert deployed.stdout.count(reloaded) == 2, deployed.stdout
        published = _kissha(lab, "-c", str(config), "publish")
        assert published.returncode == 1, published.stdout + published.stderr

        # Each node has its own files at the real paths; the machine's /etc is untouched.
        assert not Path("/etc/nsd/zones/example.org.zone").exists()
        for name in NODES:
            index = nodes[name].path(f"/var/www/{name}.{SITE}/index.txt")
            assert index.read_text() == f"Welcome to {name}.{SITE}!\n"

        # 4. Each node's kissha: a failover round (roles and zones), then certificates.
        for name in NODES:
            r = nodes[name].exec(_unit(nodes[name], "failover"))
            assert r.returncode in (0, 1), r.stdout + r.stderr
        for name in NODES:
            r = nodes[name].exec(_unit(nodes[name], "certs"), timeout=180)
            assert r.returncode == 1, r.stdout + r.stderr
        assert lab.all_point_at("fishfinger", SITE)
        # blowfish's example.org was validated through fishfinger's nginx, which does not
        # hold the token and redirects along the node FQDNs (try_files ... @next).
        log = nodes["fishfinger"].path("/var/log/nginx/access.log").read_text()
        assert any("/.well-known/acme-challenge/" in x and '" 302 ' in x for x in log.splitlines())

        # 5. Both nodes serve every name over HTTP, HTTPS (pebble's certificates, checked
        # against its root) and Gemini; both nameservers answer the zone.
        root = pebble.issuing_root
        for name in NODES:
            for family in FAMILIES:
                address = lab.address(name, family)
                for host in NAMES:
                    status = ["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"]
                    got = _curl(lab, host, address, f"http://{host}/x", root, *status)
                    assert got == f"301 https://{host}/x", (name, host, got)
                    body = _curl(lab, host, address, f"https://{host}/", root, "--fail")
                    assert body == "<h1>example.org</h1>\n", (name, host, body)
                fqdn = f"{name}.{SITE}"
                body = _curl(lab, fqdn, address, f"https://{fqdn}/index.txt", root, "--fail")
                assert body == f"Welcome to {fqdn}!\n", (name, body)
                gemini = lab.exec(
                    "client",
                    [sys.executable, "-m", "lab.netclient", "gemini", address, SITE,
                     "--ca-file", str(root)],
                )  # fmt: skip
                assert gemini.stdout.startswith("20 "), (name, gemini.stdout)
                assert "# example.org over Gemini" in gemini.stdout
            soa = lab.dig(name, SITE, "SOA")
            assert len(soa) == 1 and next(iter(soa)).startswith(f"fishfinger.{SITE}. "), soa

        # 6. The master's web server stops: failover rounds on both nodes move the marked
        # records to blowfish (bounded).
        stopped = nodes["fishfinger"].exec(["systemctl", "stop", "nginx"])
        assert stopped.returncode == 0, stopped.stderr
        for _ in range(ROUNDS):
            for name in NODES:
                r = nodes[name].exec(_unit(nodes[name], "failover"))
                assert r.returncode in (0, 1), r.stdout + r.stderr
            if lab.all_point_at("blowfish", SITE):
                break
        assert lab.all_point_at("blowfish", SITE)
        assert lab.all_point_at("blowfish", f"www.{SITE}")

        # 7. A second deploy changes nothing (the marks stay at blowfish) and runs nothing.
        t0 = time.monotonic()
        again = _kissha(lab, "-c", str(config), "deploy")
        times["deploy, no change"] = time.monotonic() - t0
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count(": no change") == 2
        assert lab.all_point_at("blowfish", SITE)

        # A zone changed in the source: deployed under each node's kissha lock, nsd
        # reloaded, the new record served, the marks still at blowfish.
        zone = site / "zones" / f"{SITE}.zone"
        zone.write_text(zone.read_text() + 'txt 300 IN TXT "added"\n')
        zoned = _kissha(lab, "-c", str(config), "deploy")
        assert zoned.returncode == 1, zoned.stdout + zoned.stderr
        assert zoned.stdout.count("reloaded: nsd\n") == 2, zoned.stdout
        for name in NODES:
            txt: set[str] = set()
            deadline = time.monotonic() + 5  # nsd reloads asynchronously
            while txt != {'"added"'} and time.monotonic() < deadline:
                txt = lab.dig(name, f"txt.{SITE}", "TXT")
            assert txt == {'"added"'}, (name, txt)
        assert lab.all_point_at("blowfish", SITE)

        # 8. A template nginx refuses (its own nginx -t, run for real on each node): the
        # files are put back, nothing is reloaded, the sites are still served.
        before = {n: nodes[n].path("/etc/nginx/sites-enabled/kissha").read_text() for n in NODES}
        calls = {n: nodes[n].path("/run/systemctl.log").read_text() for n in NODES}
        templates = site / "templates" / "debian"
        templates.mkdir(parents=True)
        shipped = Path(kissha.__file__).parent / "render/templates/debian/nginx.conf.j2"
        (templates / "nginx.conf.j2").write_text(shipped.read_text() + "no_such_directive on;\n")
        config.write_text(
            config.read_text().replace("[deploy]\n", '[deploy]\ntemplates = "templates"\n')
        )
        refused = _kissha(lab, "-c", str(config), "deploy")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert refused.stdout.count("FAILED: nginx refused the new files") == 2, refused.stdout
        for name in NODES:
            kept = nodes[name].path("/etc/nginx/sites-enabled/kissha").read_text()
            assert kept == before[name]
            assert nodes[name].path("/run/systemctl.log").read_text() == calls[name]
        body = _curl(lab, SITE, lab.address("blowfish", "ipv4"), f"https://{SITE}/", root)
        assert body == "<h1>example.org</h1>\n"
        times["the whole scenario"] = time.monotonic() - started
        print("\n" + ", ".join(f"{k}: {v:.2f} s" for k, v in times.items()))
    finally:
        for node in nodes.values():
            node.stop()
        pebble.stop()
    for node in nodes.values():
        assert not node.pids()
