"""kissha deploy through pyinfra's @local connector into a root per node ([deploy] root
"DIR/{node}"): each node gets its own tree, so one deploy cannot write the other's files.
The SSH transport is the same pyinfra Host API (see the lab test)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from kissha.cli import main

SRC = Path(__file__).parent.parent / "render" / "src"


def _config(tmp_path: Path, hosts: str = 'fishfinger = "@local", blowfish = "@local"') -> Path:
    shutil.copytree(SRC / "zones", tmp_path / "zones")
    log = tmp_path / "reloads"
    text = (
        (SRC / "debian.toml")
        .read_text()
        .replace(
            'flavour = "debian"',
            f'flavour = "debian"\nroot = "{tmp_path}/root/{{node}}"\nhosts = {{ {hosts} }}\n'
            f'templates = "{tmp_path}/templates"\n'
            "[deploy.reload]\n"
            + "".join(
                f'"{s}" = ["sh", "-c", "echo {s} >> {log}"]\n'
                for s in ("nsd", "nginx", "molly-brown@kissha", "systemd")
            ),
        )
    )
    path = tmp_path / "kissha.toml"
    path.write_text(text)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _reloads(tmp_path: Path) -> list[str]:
    log = tmp_path / "reloads"
    return log.read_text().split() if log.exists() else []


def test_dry_run_then_deploy_then_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "+++ fishfinger:/etc/nginx/sites-enabled/kissha" in out
    assert "+Welcome to blowfish.example.org!" in out
    assert not (tmp_path / "root").exists()  # a dry run writes nothing

    assert main(["-c", str(config), "deploy"]) == 1
    root = tmp_path / "root"
    index = root / "fishfinger/var/www/fishfinger.example.org/index.txt"
    assert index.read_text() == "Welcome to fishfinger.example.org!\n"
    assert not (root / "fishfinger/var/www/blowfish.example.org").exists()
    assert (root / "fishfinger/etc/kissha.toml").stat().st_mode & 0o777 == 0o640
    assert sorted(_reloads(tmp_path)) == sorted(
        ["nsd", "nginx", "molly-brown@kissha", "systemd"] * 2
    )
    assert not [p for p in root.rglob("*.kissha-*")]
    before = _tree(root)
    capsys.readouterr()

    (tmp_path / "reloads").unlink()
    assert main(["-c", str(config), "deploy"]) == 0  # idempotent: nothing changes or runs
    assert "fishfinger: no change" in capsys.readouterr().out
    assert _reloads(tmp_path) == []
    assert _tree(root) == before


def test_only_the_changed_service_is_reloaded(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    (tmp_path / "reloads").unlink()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.txt.j2").write_text("Welcome to {{ node.fqdn }}! v2\n")
    shutil.copy(
        Path(__file__).parents[2] / "src/kissha/render/templates/debian/nginx.conf.j2",
        tmp_path / "templates" / "nginx.conf.j2",
    )
    with (tmp_path / "templates" / "nginx.conf.j2").open("a") as f:
        f.write("# changed\n")
    assert main(["-c", str(config), "deploy", "--node", "blowfish"]) == 1
    assert _reloads(tmp_path) == ["nginx"]  # index.txt needs no reload
    fish = tmp_path / "root/fishfinger/var/www/fishfinger.example.org/index.txt"
    assert fish.read_text().endswith("org!\n")  # --node blowfish left fishfinger alone


def test_a_changed_nsd_conf_is_reloaded_with_a_note_to_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reload keeps nsd answering, where a restart that cannot bind (a new address the
    # interface lacks) would leave it stopped: nsd is reloaded, and the note says that
    # new listen addresses need a restart.
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    (tmp_path / "reloads").unlink()
    (tmp_path / "templates").mkdir()
    template = Path(__file__).parents[2] / "src/kissha/render/templates/debian/nsd.conf.j2"
    (tmp_path / "templates" / "nsd.conf.j2").write_text(template.read_text() + "# changed\n")
    capsys.readouterr()
    assert main(["-c", str(config), "deploy", "--node", "blowfish"]) == 1
    assert _reloads(tmp_path) == ["nsd"]
    assert (
        "  note: nsd.conf changed and nsd is reloaded, which reads the zones again but not "
        "the addresses it listens on: if those changed, restart nsd\n"
    ) in capsys.readouterr().out


def test_a_config_the_server_refuses_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    before = _tree(tmp_path / "root")
    (tmp_path / "reloads").unlink()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nsd.conf.j2").write_text("server:\n\tno-such-option: yes\n")
    (tmp_path / "templates" / "index.txt.j2").write_text("changed too\n")
    assert main(["-c", str(config), "deploy"]) == 3
    out = capsys.readouterr().out
    assert "fishfinger: FAILED: /etc/nsd/nsd.conf: nsd-checkconf refused it" in out
    assert _tree(tmp_path / "root") == before  # nothing installed, not even index.txt
    assert _reloads(tmp_path) == []


def test_one_node_unreachable_the_other_is_deployed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(tmp_path, 'fishfinger = "127.0.0.1", blowfish = "@local"')
    config.write_text(config.read_text().replace("[deploy]\n", f"[deploy]\nssh_port = {port}\n"))
    assert main(["-c", str(config), "deploy"]) == 5
    out = capsys.readouterr().out
    assert "fishfinger: FAILED:" in out
    assert "blowfish: 13 file(s) changed" in out  # 11 rendered + 2 zones
    assert (tmp_path / "root/blowfish/etc/nsd/nsd.conf").exists()
    assert not (tmp_path / "root/fishfinger").exists()


def test_a_template_error_contacts_no_node(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nginx.conf.j2").write_text("{% if %}\n")
    assert main(["-c", str(config), "deploy"]) == 2
    assert not (tmp_path / "root").exists()


def test_a_fresh_node_gets_placeholder_certificates_and_an_existing_one_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography import x509

    from kissha import config as configmod
    from kissha.deploy.placeholders import needed

    config = _config(tmp_path)
    wanted = {n.name: n for n in needed(configmod.load(config), "fishfinger", "debian")}
    assert {"example.org", "www.example.org", "fishfinger.example.org"} <= set(wanted)
    assert "blowfish.example.org" not in wanted  # another node's name: not served here
    root = tmp_path / "root/fishfinger"
    kept = wanted["www.example.org"]
    for path in (kept.cert, kept.key, kept.fullchain):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text("the operator's own\n")
    before = _tree(root)

    # A check refuses the new files: the placeholders go too, the node is as it was.
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nsd.conf.j2").write_text("server:\n\tno-such-option: yes\n")
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 3
    assert "placeholder" not in capsys.readouterr().out
    assert _tree(root) == before
    (tmp_path / "templates" / "nsd.conf.j2").unlink()

    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 1
    out = capsys.readouterr().out
    assert "note: placeholder certificate for example.org (kissha certs replaces it)" in out
    assert "placeholder certificate for www.example.org" not in out
    for path in (kept.cert, kept.key, kept.fullchain):
        assert (root / path.lstrip("/")).read_text() == "the operator's own\n"
    site = wanted["example.org"]
    cert = x509.load_pem_x509_certificate((root / site.cert.lstrip("/")).read_bytes())
    assert cert.issuer == cert.subject and "kissha placeholder" in cert.subject.rfc4514_string()
    assert (root / site.fullchain.lstrip("/")).read_bytes() == (
        root / site.cert.lstrip("/")
    ).read_bytes()
    assert (root / site.key.lstrip("/")).stat().st_mode & 0o777 == 0o640  # key_group set
    before = _tree(root)

    # Nothing else to change: no placeholder check, nothing written.
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 0
    assert "placeholder" not in capsys.readouterr().out
    assert _tree(root) == before


def test_a_no_change_deploy_downloads_only_zones_and_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyinfra.api.host import Host

    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 1
    fetched: list[str] = []
    get_file = Host.get_file

    def counting(self: Host, remote: str, *args: object, **kwargs: object) -> bool:
        fetched.append(remote.rsplit("/", 1)[-1])
        return get_file(self, remote, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Host, "get_file", counting)
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 0
    # Rendered files are compared by the SHA-256 the node computes; the zones (their
    # serials and marks) and nothing else are read whole. (No state.json yet here.)
    assert sorted(fetched) == ["example.net.zone", "example.org.zone"]

    # A changed file on the node is read (for the diff) and put back.
    nginx = tmp_path / "root/fishfinger/etc/nginx/sites-enabled/kissha"
    nginx.write_text(nginx.read_text() + "# edited by hand\n")
    fetched.clear()
    assert main(["-c", str(config), "deploy", "--node", "fishfinger", "--dry-run"]) == 1
    assert "kissha" in fetched


def test_read_all_by_digest_whatever_the_file_names(tmp_path: Path) -> None:
    from kissha.config.deploy import DeployConfig
    from kissha.deploy.remote import Remote
    from kissha.deploy.run import connect_pyinfra

    deploy = DeployConfig(root=str(tmp_path))
    remote = Remote(connect_pyinfra("n", "@local", deploy), deploy, "n")
    names = ["/plain", "/with space", "/back\\slash", "/new\nline", "/absent"]
    for name in names[:-1]:
        (tmp_path / name.lstrip("/")).write_text(f"text of {name}\n")
    known = {n: f"text of {n}\n" for n in names}
    known["/plain"] = "something else\n"  # differs: downloaded
    got = remote.read_all(names, known, exists=["/with space", "/also-absent"])
    assert got == {
        "/plain": "text of /plain\n",
        "/with space": "text of /with space\n",
        "/back\\slash": "text of /back\\slash\n",
        "/new\nline": "text of /new\nline\n",
        "/absent": None,
        "/also-absent": None,
    }
