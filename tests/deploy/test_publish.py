"""kissha publish through pyinfra's @local connector into a root per node, as the deploy
tests: only what changed is copied, a second run copies nothing, --dry-run copies
nothing, --delete removes what the source no longer has, one node failing does not stop
the other."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kissha.cli import main
from tests.deploy.test_deploy_local import _config, _tree


def _publish_config(
    tmp_path: Path, hosts: str = 'fishfinger = "@local", blowfish = "@local"'
) -> Path:
    config = _config(tmp_path, hosts)
    text = config.read_text().replace(
        "[deploy]\n", f'[deploy]\nweb_source = "{tmp_path}/www"\ngemini_source = "{tmp_path}/gmi"\n'
    )
    config.write_text(text)
    (tmp_path / "www/example.org/img").mkdir(parents=True)
    (tmp_path / "www/example.org/index.html").write_text("<h1>hello</h1>\n")
    (tmp_path / "www/example.org/img/dot.bin").write_bytes(bytes(range(256)))
    (tmp_path / "www/example.net").mkdir(parents=True)
    (tmp_path / "www/example.net/index.html").write_text("net\n")
    (tmp_path / "gmi/example.org").mkdir(parents=True)
    (tmp_path / "gmi/example.org/index.gmi").write_text("# hello\n")
    return config


def test_publish_copies_only_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _publish_config(tmp_path)
    assert main(["-c", str(config), "publish", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "fishfinger: 4 file(s) would change" in out
    assert "  /var/www/example.org/index.html (new)" in out
    assert not (tmp_path / "root").exists()

    assert main(["-c", str(config), "publish"]) == 1
    out = capsys.readouterr().out
    assert "blowfish: 4 file(s) changed" in out
    for node in ("fishfinger", "blowfish"):
        root = tmp_path / "root" / node
        assert (root / "var/www/example.org/img/dot.bin").read_bytes() == bytes(range(256))
        assert (root / "var/lib/molly-brown/example.org/index.gmi").read_text() == "# hello\n"
    tree = _tree(tmp_path / "root")
    assert not [p for p in tree if p.endswith(".kissha-new")]

    assert main(["-c", str(config), "publish"]) == 0  # nothing changed: nothing copied
    assert "fishfinger: no change" in capsys.readouterr().out
    assert _tree(tmp_path / "root") == tree

    (tmp_path / "www/example.net/index.html").write_text("net v2\n")
    (tmp_path / "www/example.org/img/dot.bin").unlink()
    assert main(["-c", str(config), "publish", "--node", "blowfish"]) == 1
    out = capsys.readouterr().out
    assert out == (
        "blowfish: 1 file(s) changed\n  /var/www/example.net/index.html\n  7 bytes copied\n"
    )
    blow = tmp_path / "root/blowfish/var/www"
    assert (blow / "example.org/img/dot.bin").exists()  # kept without --delete
    assert (tmp_path / "root/fishfinger/var/www/example.net/index.html").read_text() == "net\n"

    assert main(["-c", str(config), "publish", "--delete", "--dry-run"]) == 1
    assert "  /var/www/example.org/img/dot.bin (removed)" in capsys.readouterr().out
    assert (blow / "example.org/img/dot.bin").exists()
    assert main(["-c", str(config), "publish", "--delete"]) == 1
    assert not (blow / "example.org/img/dot.bin").exists()
    assert (blow / "example.org/index.html").exists()


def test_publish_one_node_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _publish_config(tmp_path, 'fishfinger = "127.0.0.1", blowfish = "@local"')
    config.write_text(config.read_text().replace("[deploy]\n", f"[deploy]\nssh_port = {port}\n"))
    assert main(["-c", str(config), "publish"]) == 5
    out = capsys.readouterr().out
    assert "fishfinger: FAILED:" in out
    assert "blowfish: 4 file(s) changed" in out


def test_publish_refuses_a_directory_that_is_no_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _publish_config(tmp_path)
    (tmp_path / "www/example.edu").mkdir()  # not among the config's sites
    assert main(["-c", str(config), "publish"]) == 2
    assert "no site 'example.edu'" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_publish_without_sources_is_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "publish"]) == 2


def test_several_gemini_sites_on_openbsd_link_each_name_to_its_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # vger -v (several sites serve Gemini) reads gemini_root/NAME for the name asked
    # for: www.SITE, standby.SITE... become links to SITE's directory, made once,
    # corrected when they point elsewhere, and never over a real directory.
    import shutil

    from tests.deploy.test_deploy_local import SRC

    shutil.copytree(SRC / "zones", tmp_path / "zones")
    text = (SRC / "kissha.toml").read_text()
    text = text.replace(
        'aliases = ["www", "www.paul"]\n', 'aliases = ["www"]\nserve = ["https", "gemini"]\n'
    ).replace(
        "[deploy]\n",
        f'[deploy]\nroot = "{tmp_path}/root/{{node}}"\n'
        'hosts = { fishfinger = "@local", blowfish = "@local" }\n'
        f'gemini_source = "{tmp_path}/gmi"\n',
    )
    config = tmp_path / "kissha.toml"
    config.write_text(text)
    for site in ("example.org", "example.net"):
        (tmp_path / "gmi" / site).mkdir(parents=True)
        (tmp_path / "gmi" / site / "index.gmi").write_text(f"# {site}\n")
    gmi = tmp_path / "root/fishfinger/var/gemini"
    links = {
        "standby.example.net": "example.net",
        "standby.example.org": "example.org",
        "www.example.net": "example.net",
        "www.example.org": "example.org",
    }

    assert main(["-c", str(config), "publish", "--node", "fishfinger", "--dry-run"]) == 1
    assert "  /var/gemini/www.example.net -> example.net (new)" in capsys.readouterr().out
    assert not gmi.exists()
    assert main(["-c", str(config), "publish", "--node", "fishfinger"]) == 1
    out = capsys.readouterr().out
    assert "  /var/gemini/standby.example.org -> example.org (new)" in out
    assert {p.name: os.readlink(p) for p in gmi.iterdir() if p.is_symlink()} == links
    assert (gmi / "www.example.net/index.gmi").read_text() == "# example.net\n"
    assert main(["-c", str(config), "publish", "--node", "fishfinger"]) == 0  # nothing to do
    capsys.readouterr()

    (gmi / "www.example.org").unlink()
    (gmi / "www.example.org").symlink_to("example.net")  # points elsewhere: corrected
    (gmi / "standby.example.net").unlink()
    (gmi / "standby.example.net").mkdir()  # a real directory: left alone, an error
    (gmi / "standby.example.org").unlink()
    (gmi / "standby.example.org").write_text("mine\n")  # a file: the same
    assert main(["-c", str(config), "publish", "--node", "fishfinger"]) == 5
    assert capsys.readouterr().out == (
        "fishfinger: FAILED: /var/gemini/standby.example.net: not a link to example.net "
        "(a file or directory there); /var/gemini/standby.example.org: not a link to "
        "example.org (a file or directory there)\n"
        "  /var/gemini/www.example.org -> example.org\n"  # what it did all the same
    )
    (gmi / "standby.example.org").unlink()
    (gmi / "standby.example.org").symlink_to("example.org")
    assert os.readlink(gmi / "www.example.org") == "example.org"  # corrected all the same
    assert (gmi / "standby.example.net").is_dir() and not (gmi / "standby.example.net").is_symlink()
    (gmi / "standby.example.net").rmdir()
    assert main(["-c", str(config), "publish", "--node", "fishfinger"]) == 1
    assert capsys.readouterr().out == (
        "fishfinger: 1 file(s) changed\n  /var/gemini/standby.example.net -> example.net (new)\n"
    )
