"""kissha init: flags in, a config and zones out that load, render and pass nsd-checkzone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kissha import config as configmod
from kissha.cli import main
from kissha.core import zonefile
from kissha.render.engine import render_node

NODES = [
    "--node",
    "fishfinger=fishfinger.example.org,203.0.113.10,2001:db8::10",
    "--node",
    "blowfish=blowfish.example.org,203.0.113.20",
]


@pytest.mark.parametrize("flavour", ["openbsd", "debian"])
def test_init_writes_a_config_that_renders(
    flavour: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["init", "--dir", str(tmp_path), *NODES, "--site", "example.org"]
    args += ["--site", "example.net", "--flavour", flavour, "--gemini"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "deploy --dry-run" in out
    cfg = configmod.load(tmp_path / "kissha.toml")
    assert cfg.node_names == ("fishfinger", "blowfish")
    assert cfg.deploy is not None and cfg.deploy.flavour == flavour
    assert cfg.certs is not None and cfg.certs.layout == flavour
    text = (tmp_path / "kissha.toml").read_text()
    for name in cfg.node_names:
        files = render_node(cfg, name, flavour, text)
        nsd = next(f for f in files if f.path.endswith("nsd.conf"))
        assert 'name: "example.org"' in nsd.content and 'name: "example.net"' in nsd.content
    for zone in ("example.org", "example.net"):
        path = tmp_path / "zones" / f"{zone}.zone"
        check = zonefile.check(path.read_text(), zone + ".", str(path))
        assert check.problems == () and check.warnings == ()
        # blowfish has no IPv6: standby gets an A only; the master both.
        assert len(check.scan.marked) == 5
        if shutil.which("nsd-checkzone"):
            done = subprocess.run(
                ["nsd-checkzone", zone, str(path)], capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, done.stdout + done.stderr


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["init", "--dir", str(tmp_path), *NODES, "--site", "example.org"]
    assert main(args) == 0
    before = (tmp_path / "kissha.toml").read_text()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "kissha.toml").read_text() == before
    assert main([*args, "--force"]) == 0


def test_init_without_flags_and_no_terminal_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [".venv/bin/kissha", "init", "--dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--node" in done.stderr
    assert not (tmp_path / "kissha.toml").exists()


@pytest.mark.parametrize(
    "bad", ["fishfinger", "x=notqualified,203.0.113.1", "x=a.example.org,203.0.113.999"]
)
def test_init_bad_node_flag(bad: str, tmp_path: Path) -> None:
    assert main(["init", "--dir", str(tmp_path), "--node", bad, *NODES, "--site", "a.org"]) == 2
    assert not (tmp_path / "kissha.toml").exists()


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    import argparse

    from kissha.render import init

    answers = iter(
        [
            "a=a.example.org,203.0.113.1",
            "b=b.example.org,203.0.113.2",
            "n",
            "example.org",
        ]
    )
    args = argparse.Namespace(
        dir=tmp_path, node=[], site=[], flavour=None, gemini=False, contact=None, force=False
    )
    init.run(args, prompt=lambda _q: next(answers))
    assert configmod.load(tmp_path / "kissha.toml").node_names == ("a", "b")
