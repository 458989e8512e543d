"""Zones in kissha deploy ([deploy] zones_source), through pyinfra's @local connector into
a root per node as test_deploy_local: the marked records are kept at the roles the
node's kissha serves now (its state.json, else its installed zone's marks), the serial
is newer than the node's, and a second deploy changes nothing."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest

from kissha.cli import main
from kissha.core import zonefile
from kissha.deploy.remote import Remote
from tests.deploy.test_deploy_local import _config, _reloads, _tree

ZONE = "etc/nsd/zones/example.org.zone"


def _serial(text: str) -> int:
    s = zonefile.scan(text, "example.org")
    assert s.serial is not None
    return int(s.serial.text)


def _masters(text: str) -> set[str]:
    """The addresses of www's marked records (master)."""
    s = zonefile.scan(text, "example.org")
    return {
        r.address.text for r in s.marked if r.owner == "www.example.org." and r.role == "master"
    }


def _fail_over_to_blowfish(node_root: Path) -> None:
    """What the node's kissha does when blowfish becomes master: roles in state.json and
    the marks in the zones."""
    state = node_root / "var/lib/kissha/state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    roles = {"master": "blowfish", "standby": "fishfinger", "order": ["blowfish", "fishfinger"]}
    state.write_text(json.dumps({"version": 1, "roles": roles}))
    swap = {"203.0.113.10": "203.0.113.20", "203.0.113.20": "203.0.113.10",
            "2001:db8::10": "2001:db8::20", "2001:db8::20": "2001:db8::10"}  # fmt: skip
    for zone in (node_root / "etc/nsd/zones").glob("*.zone"):
        lines = []
        for line in zone.read_text().split("\n"):
            if "Enable failover" in line:
                line = " ".join(swap.get(w, w) for w in line.split(" "))
            lines.append(line)
        zone.write_text("\n".join(lines))


def test_a_changed_zone_keeps_the_marks_at_the_current_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    fish = tmp_path / "root/fishfinger"
    installed = (fish / ZONE).read_text()
    assert installed == (tmp_path / "zones/example.org.zone").read_text()  # first install
    assert _masters(installed) == {"203.0.113.10", "2001:db8::10"}

    _fail_over_to_blowfish(fish)
    before = (fish / ZONE).read_text()
    # The operator adds a record in the source, whose marks still name fishfinger.
    source = tmp_path / "zones/example.org.zone"
    source.write_text(source.read_text() + 'txt      IN TXT "added"\n')
    (tmp_path / "reloads").unlink()
    capsys.readouterr()

    assert main(["-c", str(config), "deploy", "--dry-run", "--node", "fishfinger"]) == 1
    diff = capsys.readouterr().out
    assert '+txt      IN TXT "added"' in diff
    assert (
        "Enable failover"
        not in "".join(  # no marked record changes in the diff
            line
            for line in diff.splitlines(keepends=True)
            if line[:1] in "+-" and line[:3] != "+++"
        )
    )

    assert main(["-c", str(config), "deploy"]) == 1
    after = (fish / ZONE).read_text()
    assert 'txt      IN TXT "added"' in after
    assert _masters(after) == {"203.0.113.20", "2001:db8::20"}  # blowfish, as the node serves
    assert zonefile.serial_gt(_serial(after), _serial(before))
    assert zonefile.serial_gt(_serial(after), _serial(source.read_text()))
    # blowfish has no state.json and its zone marks name fishfinger: kept there.
    other = (tmp_path / "root/blowfish" / ZONE).read_text()
    assert _masters(other) == {"203.0.113.10", "2001:db8::10"}
    assert "nsd" in _reloads(tmp_path)

    tree = _tree(tmp_path / "root")
    (tmp_path / "reloads").unlink()
    assert main(["-c", str(config), "deploy"]) == 0  # a second deploy changes nothing
    assert _tree(tmp_path / "root") == tree
    assert _reloads(tmp_path) == []


def test_roles_from_the_installed_zone_without_state(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    fish = tmp_path / "root/fishfinger"
    _fail_over_to_blowfish(fish)
    (fish / "var/lib/kissha/state.json").unlink()  # e.g. set aside as damaged
    source = tmp_path / "zones/example.org.zone"
    source.write_text(source.read_text() + 'txt      IN TXT "added"\n')
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 1
    assert _masters((fish / ZONE).read_text()) == {"203.0.113.20", "2001:db8::20"}


def test_an_unchanged_source_after_a_failover_changes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    _fail_over_to_blowfish(tmp_path / "root/fishfinger")
    tree = _tree(tmp_path / "root")
    assert main(["-c", str(config), "deploy"]) == 0  # no flap back to the source's marks
    assert _tree(tmp_path / "root") == tree


def test_a_broken_source_zone_contacts_no_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    (tmp_path / "zones/example.org.zone").write_text("$ORIGIN example.org.\nwww IN A 1.2.3\n")
    assert main(["-c", str(config), "deploy"]) == 2
    assert "example.org.zone" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_a_failover_during_the_deploy_installs_no_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    fish = tmp_path / "root/fishfinger"
    tree = _tree(tmp_path / "root")
    source = tmp_path / "zones/example.org.zone"
    source.write_text(source.read_text() + 'txt      IN TXT "added"\n')
    read_all = Remote.read_all

    def failover_between(
        self: Remote,
        paths: list[str],
        known: Mapping[str, str] | None = None,
        exists: Collection[str] = (),
    ) -> dict[str, str | None]:
        if paths == ["/var/lib/kissha/state.json"] and self.root.endswith("fishfinger"):
            _fail_over_to_blowfish(fish)  # the node's cron run, between read and install
        return read_all(self, paths, known, exists)

    monkeypatch.setattr(Remote, "read_all", failover_between)
    capsys.readouterr()
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 5
    assert "roles changed during the deploy" in capsys.readouterr().out
    assert 'IN TXT "added"' not in (fish / ZONE).read_text()
    assert _masters((fish / ZONE).read_text()) == {"203.0.113.20", "2001:db8::20"}
    assert not list(fish.rglob("*.kissha-*"))
    assert set(_tree(tmp_path / "root")) == set(tree) | {"fishfinger/var/lib/kissha/state.json"}


def test_zones_go_in_under_the_node_kissha_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kissha.deploy import lock
    from kissha.files import RunLock

    config = _config(tmp_path)
    assert main(["-c", str(config), "deploy"]) == 1
    fish = tmp_path / "root/fishfinger"
    _fail_over_to_blowfish(fish)  # fishfinger's kissha has state: blowfish is master
    source = tmp_path / "zones/example.org.zone"
    source.write_text(source.read_text() + 'txt      IN TXT "added"\n')
    before = _tree(fish)
    monkeypatch.setattr(lock, "WAIT", 0.4)
    capsys.readouterr()

    # A kissha run holds the lock (a failover in progress): nothing goes in.
    with RunLock(fish / "var/lib/kissha/lock"):
        assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 5
    out = capsys.readouterr().out
    assert "another kissha run holds" in out and "nothing installed" in out
    assert _tree(fish) == before | {"var/lib/kissha/lock": _tree(fish)["var/lib/kissha/lock"]}

    # state.json rewritten after deploy read the roles (same roles, a run in between):
    # the locked install sees it and installs nothing.
    read_all = Remote.read_all
    state = fish / "var/lib/kissha/state.json"

    def run_between(
        self: Remote,
        paths: list[str],
        known: Mapping[str, str] | None = None,
        exists: Collection[str] = (),
    ) -> dict[str, str | None]:
        got = read_all(self, paths, known, exists)
        if paths == ["/var/lib/kissha/state.json"]:
            state.write_text(state.read_text() + "\n")
        return got

    monkeypatch.setattr(Remote, "read_all", run_between)
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 5
    assert "state.json changed during the deploy" in capsys.readouterr().out
    assert 'IN TXT "added"' not in (fish / ZONE).read_text()
    assert not list(fish.rglob("*.kissha-*"))

    # Free and unchanged: installed, marks at blowfish.
    monkeypatch.setattr(Remote, "read_all", read_all)
    assert main(["-c", str(config), "deploy", "--node", "fishfinger"]) == 1
    assert 'IN TXT "added"' in (fish / ZONE).read_text()
    assert _masters((fish / ZONE).read_text()) == {"203.0.113.20", "2001:db8::20"}
