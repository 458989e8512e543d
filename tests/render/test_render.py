"""kissha render: golden files per flavour, and the servers' own syntax checks.

Regenerate the golden files after a deliberate template change with
``KISSHA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/render`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kissha import config as configmod
from kissha.cli import main
from kissha.errors import ConfigError
from kissha.render.engine import Rendered, render_node
from kissha.render.model import next_hop

HERE = Path(__file__).parent
SRC = HERE / "src"
GOLDEN = HERE / "golden"
CONFIGS = {"openbsd": SRC / "kissha.toml", "debian": SRC / "debian.toml"}


def _render(flavour: str, overrides: Path | None = None) -> list[Rendered]:
    path = CONFIGS[flavour]
    cfg = configmod.load(path)
    text = path.read_text()
    return [f for n in cfg.node_names for f in render_node(cfg, n, flavour, text, overrides)]


@pytest.mark.parametrize("flavour", ["openbsd", "debian"])
def test_golden(flavour: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        main(["-c", str(CONFIGS[flavour]), "render", "--flavour", flavour, "--out", str(out)]) == 0
    )
    golden = GOLDEN / flavour
    if os.environ.get("KISSHA_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out, golden)
    got = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    want = sorted(p.relative_to(golden) for p in golden.rglob("*") if p.is_file())
    assert got == want
    for rel in got:
        assert (out / rel).read_text() == (golden / rel).read_text(), rel


def test_next_hop_follows_the_challenge_chain() -> None:
    chain = ("a.example.org", "b.example.org", "c.example.org")
    assert next_hop("example.org", "a.example.org", chain) == "b.example.org"
    assert next_hop("example.org", "b.example.org", chain) == "a.example.org"
    assert next_hop("b.example.org", "a.example.org", chain) == "c.example.org"
    assert next_hop("c.example.org", "c.example.org", chain) is None
    assert next_hop("a.example.org", "a.example.org", chain) == "b.example.org"


def test_health_file_and_own_fqdn_only() -> None:
    files = {(f.node, f.path): f.content for f in _render("openbsd")}
    assert files["fishfinger", "/var/www/htdocs/fishfinger.example.org/index.txt"] == (
        "Welcome to fishfinger.example.org!\n"
    )
    httpd = files["fishfinger", "/etc/httpd.conf"]
    assert 'server "fishfinger.example.org"' in httpd
    assert 'server "blowfish.example.org"' not in httpd  # never points here


@pytest.mark.skipif(not shutil.which("nsd-checkconf"), reason="nsd-checkconf not installed")
@pytest.mark.parametrize("flavour", ["openbsd", "debian"])
def test_nsd_checkconf_accepts(flavour: str, tmp_path: Path) -> None:
    for f in _render(flavour):
        if f.path.endswith("nsd.conf"):
            conf = tmp_path / f"{f.node}.conf"
            conf.write_text(f.content)
            done = subprocess.run(
                ["nsd-checkconf", str(conf)], capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_accepts(tmp_path: Path) -> None:
    # nginx -t loads the certificates: give it real ones in a temp dir.
    key = tmp_path / "k.pem"
    crt = tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=example.org", "-keyout", str(key), "-out", str(crt),
         "-days", "2"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    for f in _render("debian"):
        if "nginx" not in f.path:
            continue
        site = f.content
        for line in site.splitlines():
            if "ssl_certificate_key" in line:
                site = site.replace(line.split()[-1].rstrip(";"), str(key))
            elif "ssl_certificate " in line:
                site = site.replace(line.split()[-1].rstrip(";"), str(crt))
        (tmp_path / "site.conf").write_text(site)
        (tmp_path / "nginx.conf").write_text(
            f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
            f"events {{}}\nhttp {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
        )
        done = subprocess.run(
            ["nginx", "-t", "-q", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
             "-c", str(tmp_path / "nginx.conf")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_operator_template_overrides(tmp_path: Path) -> None:
    (tmp_path / "openbsd").mkdir()
    (tmp_path / "openbsd" / "index.txt.j2").write_text("Welcome to {{ node.fqdn }}! (ours)\n")
    (tmp_path / "crontab.j2").write_text("# nothing for {{ node.name }}\n")
    files = {(f.node, f.path): f.content for f in _render("openbsd", tmp_path)}
    assert files["blowfish", "/var/www/htdocs/blowfish.example.org/index.txt"].endswith("(ours)\n")
    assert files["blowfish", "/var/cron/tabs/root"] == "# nothing for blowfish\n"


def test_template_error_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "relayd.conf.j2").write_text("{% for x in %}\n")
    with pytest.raises(ConfigError, match=r"relayd.conf.j2.*line 1"):
        _render("openbsd", tmp_path)
    (tmp_path / "relayd.conf.j2").write_text("{{ no_such_value }}\n")
    with pytest.raises(ConfigError, match="no_such_value"):
        _render("openbsd", tmp_path)


def test_a_name_without_https_is_served_on_port_80_not_redirected() -> None:
    # serve = []: there is no HTTPS server for the name, so a redirect would lead nowhere.
    site = next(f.content for f in _render("debian") if f.path.endswith("sites-enabled/kissha"))
    blocks = site.split("\nserver {")
    plain = next(b for b in blocks if "server_name example.com;" in b)
    assert "root /var/www/example.com;" in plain
    assert "return 301" not in plain
    served = next(b for b in blocks if "server_name example.org;" in b and "listen 80;" in b)
    assert "return 301 https://$host$request_uri;" in served
