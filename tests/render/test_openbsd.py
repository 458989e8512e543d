"""The OpenBSD flavour holds the facts of the original's Rex templates (docs/openbsd.md).

The rendered httpd.conf, relayd.conf and nsd.conf are parsed into directive sets per block
and compared, key by key, with what the original's templates produce for the same sites:
for each site the apex, ``www.`` and ``standby.``, plus the node's own FQDN. Where kissha
differs on purpose, the assertion says kissha's way and docs/openbsd.md says why.
httpd(8) and relayd(8) cannot check the files here (OpenBSD only); nsd-checkconf does in
test_render.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kissha import config as configmod
from kissha.config.monitor import MonitorConfig
from kissha.render.engine import Rendered, render_node
from kissha.render.model import monitor_extra_runs, next_hop

SRC = Path(__file__).parent / "src" / "kissha.toml"
NODES = {
    "fishfinger": ("fishfinger.example.org", "203.0.113.10", "2001:db8::10"),
    "blowfish": ("blowfish.example.org", "203.0.113.20", "2001:db8::20"),
}
# The original's names: every site with the prefixes '', 'www.' and 'standby.'
# (tests/render/src/kissha.toml adds the alias www.paul.example.net to example.net).
ORIGINAL_PREFIXES = ("", "www.", "standby.")
HTTPS_SITES = ("example.org", "example.net")
PLAIN_SITE = "example.com"  # serve = []: no TLS (the original had none such)
GEMINI_SITE = "example.org"

Blocks = dict[tuple[str, ...], set[str]]


def _words(line: str) -> str:
    """One directive with its blanks collapsed (quotes kept as rendered)."""
    return " ".join(line.split())


def parse_braces(text: str) -> Blocks:
    """httpd.conf/relayd.conf: {(block header, ...): its directives}, macros expanded and
    quotes dropped from the headers. httpd's two servers of one name (port 80 and 8080)
    are told apart by their listen port: ("server NAME :PORT", ...)."""
    macros: dict[str, str] = {}
    found: list[tuple[tuple[str, ...], set[str]]] = [((), set())]
    stack: list[int] = [0]  # indexes into found
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()  # no '#' inside our values
        if not line:
            continue
        m = re.fullmatch(r'(\w+)="([^"]*)"', line)
        if m:
            macros[m[1]] = m[2]
            continue
        for k, v in macros.items():
            line = line.replace("$" + k, v)
        one = re.fullmatch(r"(.*?)\{(.*)\}", line)
        if one and one[2].strip():  # table <t> { a b }
            found.append((found[stack[-1]][0] + (_words(one[1]),), set(one[2].split())))
            continue
        if line.endswith("{"):
            found.append((found[stack[-1]][0] + (_words(line[:-1]),), set()))
            stack.append(len(found) - 1)
            continue
        if line == "}":
            stack.pop()
            continue
        found[stack[-1]][1].add(_words(line))
    out: Blocks = {}
    top: tuple[str, ...] = ()
    for key, ds in found:
        if len(key) == 1:
            top = key
            if key[0].startswith("server "):
                port = next(d.split()[-1] for d in ds if d.startswith("listen on "))
                top = (f"server {key[0].split()[1].strip(chr(34))} :{port}",)
        name = top + key[1:] if key else key
        assert name not in out, f"{name} twice"
        out[name] = ds
    return out


def parse_nsd(text: str) -> dict[str, list[set[str]]]:
    """nsd.conf: each clause ("server", "zone"...) with its "key: value" lines."""
    out: dict[str, list[set[str]]] = {}
    current: set[str] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.fullmatch(r"([\w-]+):\s*(.*)", line)
        if not m:
            continue
        if not m[2]:
            current = set()
            out.setdefault(m[1], []).append(current)
        elif current is not None:
            value = m[2].strip('"')
            current.add(f"{m[1]}: {value}")
    return out


def _files() -> dict[tuple[str, str], Rendered]:
    cfg = configmod.load(SRC)
    text = SRC.read_text()
    return {
        (f.node, f.path): f for n in cfg.node_names for f in render_node(cfg, n, "openbsd", text)
    }


@pytest.fixture(scope="module")
def files() -> dict[tuple[str, str], Rendered]:
    return _files()


def _names(node: str) -> list[str]:
    """The original's https names for our sites, plus kissha's extra alias."""
    names = [p + s for s in HTTPS_SITES for p in ORIGINAL_PREFIXES]
    return [*names, "www.paul.example.net", NODES[node][0]]


@pytest.mark.parametrize("node", sorted(NODES))
def test_httpd_port_80_per_name(files: dict[tuple[str, str], Rendered], node: str) -> None:
    f = files[node, "/etc/httpd.conf"]
    assert (f.spec.mode, f.spec.owner, f.spec.group) == (0o644, "root", "wheel")
    assert "httpd" in f.spec.services  # the original restarted httpd when it changed
    blocks = parse_braces(f.content)
    other = next(fqdn for n, (fqdn, _, _) in NODES.items() if n != node)
    for name in [*_names(node), *(p + PLAIN_SITE for p in ORIGINAL_PREFIXES)]:
        server = f"server {name} :80"
        # The original: listen on * port 80, forwarded-style log, the challenge location
        # served from /acme with 'request strip 2'.
        assert {"listen on * port 80", "log style forwarded"} <= blocks[(server,)], name
        challenge = blocks[(server, 'location found "/.well-known/acme-challenge/*"')]
        assert {'root "/acme"', "request strip 2"} <= challenge, name
        # kissha: a token not held here goes to the next node (the redirect chain).
        hop = next_hop(name, NODES[node][0], tuple(fqdn for fqdn, _, _ in NODES.values()))
        assert hop in (other, None)
        assert blocks[(server, 'location "/.well-known/acme-challenge/*"')] == {
            f'block return 302 "http://{hop}$REQUEST_URI"' if hop else "block return 404"
        }
        redirect = blocks.get((server, 'location "*"'))
        if name.endswith(PLAIN_SITE):
            assert redirect is None, name  # no TLS: the content is here
            assert f'root "/htdocs/{PLAIN_SITE}"' in blocks[(server,)]
        else:
            # The original redirected to HTTPS with 302; kissha with 301 (docs/openbsd.md).
            assert redirect == {'block return 301 "https://$HTTP_HOST$REQUEST_URI"'}, name
    assert not any(other in key[0] for key in blocks if key)  # never points here


@pytest.mark.parametrize("node", sorted(NODES))
def test_httpd_content_behind_relayd(files: dict[tuple[str, str], Rendered], node: str) -> None:
    blocks = parse_braces(files[node, "/etc/httpd.conf"].content)
    fqdn = NODES[node][0]
    content = {k[0] for k in blocks if k and k[0].endswith(" :8080")}
    assert content == {f"server {n} :8080" for n in _names(node)}  # TLS names only
    for name in _names(node):
        site = fqdn if name == fqdn else next(s for s in HTTPS_SITES if name.endswith(s))
        # The original: listen on * port 8080 (kissha: loopback only, relayd's side).
        assert blocks[(f"server {name} :8080",)] == {
            "listen on 127.0.0.1 port 8080",
            "log style forwarded",
            f'root "/htdocs/{site}"',
        }
    # The health file is the FQDN server's /index.txt, "Welcome to FQDN!" as the original's.
    health = files[node, f"/var/www/htdocs/{fqdn}/index.txt"]
    assert health.content == f"Welcome to {fqdn}!\n"


@pytest.mark.parametrize("node", sorted(NODES))
def test_relayd(files: dict[tuple[str, str], Rendered], node: str) -> None:
    f = files[node, "/etc/relayd.conf"]
    assert (f.spec.mode, f.spec.owner, f.spec.group) == (0o600, "root", "wheel")
    assert "relayd" in f.spec.services
    _, ipv4, ipv6 = NODES[node]
    blocks = parse_braces(f.content)
    assert "log connection" in blocks[()]
    assert blocks[("table <httpd>",)] == {"127.0.0.1"}
    assert blocks[("table <gemini>",)] == {"127.0.0.1"}
    https = blocks[('http protocol "https"',)]
    assert {d for d in https if d.startswith("tls keypair")} == {
        f'tls keypair "{n}"' for n in _names(node)
    }
    assert {
        'match request header set "X-Forwarded-For" value "$REMOTE_ADDR"',
        'match request header set "X-Forwarded-Proto" value "https"',
        # The original passed the WebSocket headers; relayd answers 403 to an upgrade
        # unless 'http websockets' is set, which is what makes them work.
        "http websockets",
    } <= https
    for family, address in (("4", ipv4), ("6", ipv6)):
        assert blocks[(f'relay "https{family}"',)] == {
            f"listen on {address} port 443 tls",
            'protocol "https"',
            "forward to <httpd> port 8080",
        }
        assert blocks[(f'relay "gemini{family}"',)] == {
            f"listen on {address} port 1965 tls",
            'protocol "gemini"',
            "forward to <gemini> port 11965",
        }
    gemini = blocks[('tcp protocol "gemini"',)]
    # The original: the site and standby.; kissha also its www. alias.
    assert gemini == {f'tls keypair "{p}{GEMINI_SITE}"' for p in ORIGINAL_PREFIXES}


@pytest.mark.parametrize("node", sorted(NODES))
def test_nsd(files: dict[tuple[str, str], Rendered], node: str) -> None:
    f = files[node, "/var/nsd/etc/nsd.conf"]
    assert (f.spec.mode, f.spec.owner, f.spec.group) == (0o640, "root", "_nsd")
    conf = parse_nsd(f.content)
    (server,) = conf["server"]
    assert {"hide-version: yes", "database: "} <= server
    (remote,) = conf["remote-control"]
    assert remote == {"control-enable: yes", "control-interface: /var/run/nsd.sock"}
    zonesdir = next(d.split(": ", 1)[1] for d in server if d.startswith("zonesdir:"))
    zones = {}
    for z in conf["zone"]:
        name = next(d.split(": ", 1)[1] for d in z if d.startswith("name:"))
        file = next(d.split(": ", 1)[1] for d in z if d.startswith("zonefile:"))
        zones[name] = str(Path(zonesdir) / file)  # an absolute zonefile wins
    # The original: zonefile "master/ZONE.zone" under nsd's default /var/nsd/zones.
    assert zones == {z: f"/var/nsd/zones/master/{z}.zone" for z in ("example.org", "example.net")}


@pytest.mark.parametrize("node", sorted(NODES))
def test_crontab_and_rc_conf(files: dict[tuple[str, str], Rendered], node: str) -> None:
    cron = files[node, "/var/cron/tabs/root"]
    assert cron.spec.kind == "lines"  # added to root's crontab, as the original's uniq
    lines = [ln for ln in cron.content.splitlines() if ln and not ln.startswith("#")]
    kissha = "/usr/local/bin/kissha -c /etc/kissha.toml"
    # The original: every minute with -ns; its monitor every 5 minutes 08-22h, a
    # re-notification at 07:00 and a weekly report (here Sunday 03:00, as the original's).
    assert lines[0] == f"* * * * * -ns {kissha} failover"
    assert re.fullmatch(rf"\d+ 4 \* \* \* -ns {kissha} certs", lines[1])
    assert lines[2:] == [
        f"*/5 8-22 * * * -ns {kissha} monitor --quiet",
        f"0 7 * * * -ns {kissha} monitor --quiet",
        f"0 3 * * 0 -ns {kissha} monitor --quiet",
    ]
    rc = files[node, "/etc/rc.conf.local"]
    assert rc.spec.kind == "lines"
    assert set(rc.content.split()) == {
        "nsd_flags=",
        "httpd_flags=",
        "relayd_flags=",
        "inetd_flags=",  # vger, the Gemini server, runs from inetd (the original's way)
    }


@pytest.mark.parametrize("node", sorted(NODES))
def test_gemini_server_from_inetd(files: dict[tuple[str, str], Rendered], node: str) -> None:
    """The original: "127.0.0.1:11965 stream tcp nowait www /usr/local/bin/vger vger -v".
    One Gemini site: vger serves its directory for every name of it."""
    f = files[node, "/etc/inetd.conf"]
    assert (f.spec.kind, f.spec.mode, f.spec.services) == ("lines", 0o644, ("inetd",))
    lines = [ln for ln in f.content.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "127.0.0.1:11965 stream tcp nowait www /usr/local/bin/vger vger"
        f" -d /var/gemini/{GEMINI_SITE}"
    ]


def test_gemini_server_several_sites(tmp_path: Path) -> None:
    """Several Gemini sites: vger -v, a directory per name under gemini_root; no Gemini
    site: no inetd line and no inetd_flags."""
    text = SRC.read_text().replace(
        'name = "example.net"', 'name = "example.net"\nserve = ["https", "gemini"]'
    )
    (tmp_path / "zones").mkdir()
    path = tmp_path / "kissha.toml"
    path.write_text(text)
    files = {f.path: f for f in render_node(configmod.load(path), "blowfish", "openbsd", text)}
    assert "vger vger -v -d /var/gemini\n" in files["/etc/inetd.conf"].content
    path.write_text(text.replace('serve = ["https", "gemini"]', ""))
    files = {f.path: f for f in render_node(configmod.load(path), "blowfish", "openbsd", text)}
    assert "/etc/inetd.conf" not in files
    assert "inetd" not in files["/etc/rc.conf.local"].content


def test_monitor_extra_runs() -> None:
    assert monitor_extra_runs(MonitorConfig()) == ["0 7 * * *"]  # renotify 07:00
    assert monitor_extra_runs(MonitorConfig(renotify=9 * 60)) == []  # a regular run
    assert monitor_extra_runs(MonitorConfig(renotify=9 * 60 + 2)) == ["2 9 * * *"]
    assert monitor_extra_runs(MonitorConfig(renotify=None, weekly=(0, 7 * 60))) == [
        "0 7 * * 1"  # Monday
    ]
    assert monitor_extra_runs(MonitorConfig(renotify=None, weekly=(6, 23 * 60))) == [
        "0 23 * * 0"  # Sunday
    ]
    assert monitor_extra_runs(MonitorConfig(timezone="Europe/Berlin")) == []


@pytest.mark.parametrize("node", sorted(NODES))
def test_keypairs_are_the_files_kissha_certs_keeps(
    files: dict[tuple[str, str], Rendered], node: str
) -> None:
    """relayd refuses to start when a keypair file is missing. It loads "tls keypair NAME"
    from /etc/ssl/NAME.crt and /etc/ssl/private/NAME.key: the original's acme-client paths
    (full chain in /etc/ssl/NAME.fullchain.pem, NAME.crt linked to it), which kissha certs
    writes, or a placeholder, for every name it holds."""
    from kissha.certs.plan import held_names
    from kissha.certs.settings import CertsConfig

    cfg = configmod.load(SRC)
    assert cfg.certs is not None
    held = {n.name for n in held_names(cfg.site_names(), node)}
    blocks = parse_braces(files[node, "/etc/relayd.conf"].content)
    keypairs = {
        d.split()[-1].strip('"')
        for key in (('http protocol "https"',), ('tcp protocol "gemini"',))
        for d in blocks[key]
        if d.startswith("tls keypair ")
    }
    assert keypairs <= held
    for name in keypairs:
        assert str(cfg.certs.path("cert", name)) == f"/etc/ssl/{name}.crt"
        assert str(cfg.certs.path("key", name)) == f"/etc/ssl/private/{name}.key"
        assert str(cfg.certs.path("fullchain", name)) == f"/etc/ssl/{name}.fullchain.pem"
    assert cfg.certs.cert_has_chain  # NAME.crt holds the chain, as the original's link did
    # The default challenge directory is acme-client's, /var/www/acme: httpd's "/acme".
    assert CertsConfig().challenge_dir == Path("/var/www/acme")


# Not a syntax check (httpd -n and relayd -n run on the node, at deploy): the directives
# our templates may write, so that a typo in a template fails here, not on a node.
HTTPD_WORDS = (
    r'server "[^"]+"',
    r"listen on (\*|127\.0\.0\.1) port \d+",
    r"log style forwarded",
    r'root "/[^"]*"',
    r"request strip \d+",
    r'location (found )?"[^"]+"',
    r"directory no auto index",
    r'block return (301|302) "https?://[^"]+"',
    r"block return 404",
)
RELAYD_WORDS = (
    r'ext[46]="[^"]+"',
    r"log connection",
    r"table <\w+> \{ [\d.:]+ \}",
    r'(http|tcp) protocol "\w+"',
    r'tls keypair "[^"]+"',
    r'match request header set "[\w-]+" value "[^"]+"',
    r"http websockets",
    r'relay "\w+"',
    r"listen on \$ext[46] port \d+ tls",
    r'protocol "\w+"',
    r"forward to <\w+> port \d+",
)


@pytest.mark.parametrize(
    ("path", "words"), [("/etc/httpd.conf", HTTPD_WORDS), ("/etc/relayd.conf", RELAYD_WORDS)]
)
def test_only_known_directives(
    files: dict[tuple[str, str], Rendered], path: str, words: tuple[str, ...]
) -> None:
    pattern = re.compile("|".join(f"(?:{w})" for w in words))
    for node in NODES:
        depth = 0
        for raw in files[node, path].content.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            depth += line.endswith("{") - (line == "}")
            if line == "}":
                continue
            assert pattern.fullmatch(line.removesuffix(" {")), f"{node}:{path}: {line}"
            assert depth >= 0
        assert depth == 0, f"{node}:{path}: unbalanced braces"


def test_init_zones_as_the_original(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The original's zone templates: $TTL 4h, SOA 1h/30m/7d/1h, both nodes as NS, and
    the apex, www and standby marked '; Enable failover' with TTL 300 (apex and www at
    the master, standby at the standby). kissha init writes the same for a new user."""
    import dns.rdatatype
    import dns.zone

    from kissha.cli import main

    nodes = [f"--node={n}={fqdn},{v4},{v6}" for n, (fqdn, v4, v6) in NODES.items()]
    args = ["init", "--dir", str(tmp_path), "--flavour", "openbsd", *nodes, "--site", "example.org"]
    assert main(args) == 0
    capsys.readouterr()
    text = (tmp_path / "zones" / "example.org.zone").read_text()
    zone = dns.zone.from_text(text, origin="example.org.", relativize=False)
    soa = zone.find_rdataset("example.org.", dns.rdatatype.SOA)
    timers = (soa[0].refresh, soa[0].retry, soa[0].expire, soa[0].minimum)
    assert timers == (3600, 1800, 7 * 86400, 3600)
    ns = zone.find_rdataset("example.org.", dns.rdatatype.NS)
    assert ns.ttl == 4 * 3600
    assert {str(r.target) for r in ns} == {f"{fqdn}." for fqdn, _, _ in NODES.values()}
    master, standby = NODES["fishfinger"], NODES["blowfish"]
    for owner, (_, v4, v6) in (("@", master), ("www", master), ("standby", standby)):
        name = "example.org." if owner == "@" else f"{owner}.example.org."
        for rdtype, address in ((dns.rdatatype.A, v4), (dns.rdatatype.AAAA, v6)):
            rrset = zone.find_rdataset(name, rdtype)
            assert rrset.ttl == 300 and [r.address for r in rrset] == [address]
    marked = [ln for ln in text.splitlines() if ln.endswith("; Enable failover")]
    assert len(marked) == 6
    # The certificates' reload: the original's ACME script reloaded relayd.
    config = (tmp_path / "kissha.toml").read_text()
    assert 'reload = [["rcctl", "reload", "relayd"]]' in config
