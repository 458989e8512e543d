"""The config loader: every bad fixture is a ConfigError naming its key; good ones load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kissha import config as configmod
from kissha.config import ZoneRef, zone_refs
from kissha.core.model import Node, ProbeSpec
from kissha.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
BAD = sorted(CONFIG_DIR.glob("bad-*.toml"))
EXPECT_RE = re.compile(r"^# expect: (.+)$", re.MULTILINE)


def expectations(path: Path) -> list[str]:
    # Read as bytes: one fixture is deliberately not UTF-8 (after its ASCII header).
    text = path.read_bytes().decode("utf-8", "replace")
    return [m.strip() for m in EXPECT_RE.findall(text)]


def test_there_are_bad_fixtures() -> None:
    assert len(BAD) >= 30


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_fixture_starts_with_expect(path: Path) -> None:
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: ")
    assert expectations(path)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_fixture_is_rejected(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    exc = info.value
    message = str(exc)
    assert exc.exit_code == 2
    assert message.startswith(f"{path}: "), message
    assert exc.source == str(path)
    for fragment in expectations(path):
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_many_problems_are_listed_one_per_line() -> None:
    path = CONFIG_DIR / "bad-many.toml"
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    exc = info.value
    lines = str(exc).splitlines()
    assert lines[0] == f"{path}: {len(exc.problems)} problems:"
    assert lines[1:] == [f"  {p}" for p in exc.problems]
    fragments = expectations(path)[1:]  # the first is the count
    assert len(exc.problems) == len(fragments)
    for fragment in fragments:
        assert sum(fragment in p for p in exc.problems) == 1, fragment


def test_good_minimal_defaults() -> None:
    path = CONFIG_DIR / "good-minimal.toml"
    cfg = configmod.load(path)
    assert cfg.source == str(path)
    assert cfg.nodes == (
        Node("fishfinger", "fishfinger.example.org", ipv4="198.51.100.11"),
        Node("blowfish", "blowfish.example.org", ipv6="2001:db8::12"),
    )
    assert cfg.node_names == ("fishfinger", "blowfish")
    assert cfg.default_master == "fishfinger"
    assert cfg.rotation == "weekly"
    assert cfg.standby_when_down == "master"
    assert cfg.state_dir == Path("/var/lib/kissha")

    h = cfg.health
    assert h.timeout == 2.0
    assert isinstance(h.timeout, float)
    assert h.retries == 1
    assert h.failures_before_demotion == 3
    assert h.successes_before_promotion == 5
    assert h.max_body == 65536
    assert h.cert_warn_days == 14
    assert h.probes == (
        ProbeSpec(
            name="https",
            kind="https",
            port=443,
            path="/index.txt",
            expect="Welcome to {fqdn}",
            ca_file=None,
            required=True,
            tls="ca",
            fingerprints=(),
            zone=None,
        ),
    )
    assert all(n.probes is None for n in cfg.nodes)

    d = cfg.dns
    assert d.server == "nsd"
    assert d.zones_dir == Path("/etc/nsd/zones")
    assert d.zones == ("*.zone",)
    assert d.control == ("nsd-control",)
    assert d.checkzone == ("nsd-checkzone",)
    assert d.verify_servers == ("127.0.0.1", "::1")
    assert d.verify_port == 53
    assert d.verify_timeout == 5.0
    assert d.verify_max_names == 1000
    assert d.serial == "epoch"
    assert d.command_timeout == 30.0


def test_good_full_values() -> None:
    path = CONFIG_DIR / "good-full.toml"
    cfg = configmod.load(path)
    # File order, not alphabetical; FQDNs lowercased without the trailing dot.
    assert cfg.nodes == (
        Node("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8::11"),
        Node("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8::12"),
        Node("angelfish", "angelfish.example.net", ipv4="203.0.113.13"),
    )
    assert cfg.node("angelfish").families == ("ipv4",)
    assert cfg.default_master == "blowfish"
    assert cfg.rotation == "off"
    assert cfg.standby_when_down == "keep"
    assert cfg.state_dir == Path("/srv/kissha/state")

    h = cfg.health
    assert (h.timeout, h.retries) == (3.5, 2)
    assert (h.failures_before_demotion, h.successes_before_promotion) == (4, 6)
    assert h.max_body == 4096
    assert h.probes == (
        ProbeSpec("web", "https", 8443, "/health/ok.txt", "OK {fqdn}", "/etc/kissha/ca.pem", True),
        ProbeSpec("web-alt", "https", 443, "/", "It works", "/etc/kissha/other-ca.pem", False),
    )

    d = cfg.dns
    assert d.server == "nsd"
    # Relative paths resolve against the config file's directory, zone files against zones_dir.
    assert d.zones_dir == CONFIG_DIR / "zones"
    assert d.zones == ("*.zone", ZoneRef("example.net.", CONFIG_DIR / "zones" / "db.example.net"))
    assert d.control == ("/usr/sbin/nsd-control", "-c", "/etc/nsd/nsd.conf")
    assert d.checkzone == ("/usr/sbin/nsd-checkzone",)
    assert d.verify_servers == ("192.0.2.53", "2001:db8::53")
    assert d.verify_port == 5353
    assert d.verify_timeout == 2.5
    assert d.verify_max_names == 50
    assert d.serial == "date"
    assert d.command_timeout == 12.0
    assert isinstance(d.command_timeout, float)


PIN_A = "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
PIN_B = "sha256:FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210"


def test_good_probes_every_type_with_its_defaults() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-probes.toml")
    h = cfg.health
    assert h.cert_warn_days == 21
    by_name = {p.name: p for p in h.probes}
    assert list(by_name) == [
        "web",
        "plain",
        "capsule",
        "capsule-ca",
        "pinned",
        "ssh",
        "ns",
        "mail",
    ]
    assert by_name["web"] == ProbeSpec("web", "https", 443, "/index.txt", "Welcome to {fqdn}")
    assert by_name["plain"] == ProbeSpec(
        "plain", "http", 80, "/index.txt", "Welcome to {fqdn}", required=False
    )
    # Gemini: port 1965, path "/", no body check, trust on first use by default.
    assert by_name["capsule"] == ProbeSpec("capsule", "gemini", 1965, "/", "", tls="tofu")
    assert by_name["capsule-ca"] == ProbeSpec(
        "capsule-ca",
        "gemini",
        11965,
        "/status.gmi",
        "up {fqdn}",
        ca_file=str(CONFIG_DIR / "gemini-ca.pem"),
        tls="ca",
    )
    # Fingerprints: colons dropped, upper case, in file order.
    assert by_name["pinned"] == ProbeSpec(
        "pinned",
        "gemini",
        1965,
        "/",
        "",
        tls="pinned",
        fingerprints=(("fishfinger", PIN_A), ("blowfish", PIN_B)),
    )
    # tcp, dns and smtp send no request: no path, no text.
    assert by_name["ssh"] == ProbeSpec("ssh", "tcp", 22, "", "")
    assert by_name["ns"] == ProbeSpec("ns", "dns", 53, "", "", zone="example.org")
    assert by_name["mail"] == ProbeSpec("mail", "smtp", 587, "", "", required=False)


def test_node_probe_lists() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-probes.toml")
    fish, blow = cfg.nodes
    assert fish.probes is None
    assert fish.runs("ssh") and fish.runs("capsule-ca")
    assert blow.probes == ("web", "capsule", "pinned", "ns", "mail")
    assert blow.runs("capsule") and not blow.runs("ssh") and not blow.runs("capsule-ca")


def _with_probes(specs: list[dict[str, object]], **node_b: object) -> configmod.Config:
    return configmod.parse(
        {
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "198.51.100.11"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "198.51.100.12", **node_b},
            },
            "health": {"probes": specs},
            "dns": {"zones_dir": "/etc/nsd/zones"},
        }
    )


def test_pinned_needs_fingerprints_only_for_nodes_that_run_it() -> None:
    specs: list[dict[str, object]] = [
        {"type": "https"},
        {"type": "gemini", "tls": "pinned", "fingerprints": {"fishfinger": PIN_A.lower()}},
    ]
    cfg = _with_probes(specs, probes=["https"])
    assert cfg.health.probes[1].fingerprints == (("fishfinger", PIN_A),)
    with pytest.raises(ConfigError) as info:
        _with_probes(specs)
    assert info.value.problems == [
        "health.probes[1].fingerprints: no fingerprint for node 'blowfish'"
    ]


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        (PIN_A, PIN_A),
        (PIN_A.lower(), PIN_A),
        ("SHA256:" + ":".join(PIN_A[7 + i : 9 + i] for i in range(0, 64, 2)), PIN_A),
        ("sha256:" + "0" * 63, None),
        ("sha1:" + "0" * 64, None),
        ("0" * 64, None),
        ("sha256:" + "g" * 64, None),
    ],
)
def test_normal_fingerprint(text: str, normal: str | None) -> None:
    assert configmod.normal_fingerprint(text) == normal


def test_node_order_is_file_order(tmp_path: Path) -> None:
    names = ["zebrafish", "angelfish", "monkfish", "blowfish"]
    body = "".join(
        f'[nodes.{n}]\nfqdn = "{n}.example.org"\nipv4 = "198.51.100.{i + 1}"\n\n'
        for i, n in enumerate(names)
    )
    path = tmp_path / "kissha.toml"
    path.write_text(body + '[dns]\nzones_dir = "/etc/nsd/zones"\n')
    cfg = configmod.load(path)
    assert cfg.node_names == tuple(names)
    assert cfg.default_master == "zebrafish"


def test_ipv6_is_normalized() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-full.toml")
    # Written as 2001:0DB8:0000:0000:0000:0000:0000:0011 in the file.
    assert cfg.node("fishfinger").ipv6 == "2001:db8::11"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"{path}: cannot read")


def _dns(zones_dir: Path, zones: object) -> configmod.DnsConfig:
    cfg = configmod.parse(
        {
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "198.51.100.11"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "198.51.100.12"},
            },
            "dns": {"zones_dir": str(zones_dir), "zones": zones},
        }
    )
    return cfg.dns


def test_zone_refs_glob(tmp_path: Path) -> None:
    for name in ("b.example.zone", "a.zone", ".hidden.zone.kissha-new", "notes.txt"):
        (tmp_path / name).write_text("")
    refs = zone_refs(_dns(tmp_path, "*.zone"))
    assert refs == [
        ZoneRef("a.", tmp_path / "a.zone"),
        ZoneRef("b.example.", tmp_path / "b.example.zone"),
    ]


def test_zone_refs_skip_hidden_files_and_directories(tmp_path: Path) -> None:
    # "*" matches dot files in pathlib: the hidden ones must be skipped, not rejected.
    for name in ("a.zone", ".hidden.zone.kissha-new", ".a.zone.bak", ".old.zone"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.zone").mkdir()
    assert zone_refs(_dns(tmp_path, "*")) == [ZoneRef("a.", tmp_path / "a.zone")]


def test_zone_refs_without_zone_suffix(tmp_path: Path) -> None:
    (tmp_path / "db.example").write_text("")
    with pytest.raises(ConfigError) as info:
        zone_refs(_dns(tmp_path, "db.*"))
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "db.example" in message
    assert "{name = ..., file = ...}" in message


def test_zone_refs_table_form(tmp_path: Path) -> None:
    refs = zone_refs(_dns(tmp_path, [{"name": "x.org", "file": "db.x"}]))
    assert refs == [ZoneRef("x.org.", tmp_path / "db.x")]


def test_zone_refs_mixed_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "a.zone").write_text("")
    zones = ["*.zone", "a.zone", {"name": "x.org.", "file": "db.x"}]
    assert zone_refs(_dns(tmp_path, zones)) == [
        ZoneRef("a.", tmp_path / "a.zone"),
        ZoneRef("x.org.", tmp_path / "db.x"),
    ]


def test_cli_check_config_bad_file() -> None:
    path = CONFIG_DIR / "bad-dns-server.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "kissha", "-c", str(path), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == f"kissha: {path}: dns.server: must be one of nsd, not 'bind'"


def test_shipped_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "kissha.toml"
    cfg = configmod.load(example)
    assert [n.name for n in cfg.nodes] == ["fishfinger", "blowfish"]
    assert cfg.dns.zones_dir == Path("/var/nsd/zones/master")


def test_page_defaults_and_values() -> None:
    assert configmod.load(CONFIG_DIR / "good-minimal.toml").page == configmod.PageConfig()
    assert configmod.PageConfig().dir is None
    cfg = configmod.load(CONFIG_DIR / "good-page.toml")
    assert cfg.page == configmod.PageConfig(
        dir=CONFIG_DIR / "www" / "kissha",
        days=7,
        title="Our <sites> & friends",
        every=30.0,
        nameservers=False,
        port=5353,
    )


def test_shipped_example_page_section_loads_when_uncommented(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "kissha.toml"
    text = example.read_text()
    head, _, page = text.partition("# [page]\n")
    assert page, "the example shows a commented [page] section"
    page = page.split("\n\n", 1)[0]  # the section ends at the first blank line
    uncommented = "\n".join(line.removeprefix("# ") for line in page.splitlines())
    path = tmp_path / "kissha.toml"
    path.write_text(head + "[page]\n" + uncommented + "\n")
    cfg = configmod.load(path)
    assert cfg.page == configmod.PageConfig(
        dir=Path("/var/www/htdocs/kissha"), title="example.org failover"
    )
