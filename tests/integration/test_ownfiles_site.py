"""kissha's own files damaged on a real site (nsd, HTTPS nodes): `failover` and
`status` go on with a one-line warning naming the file, never exit 70."""

from __future__ import annotations

import json

import pytest

from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads, as the zones start
DAMAGE = {
    "wrong shape": b'{"health": []}',
    "null": b"null",
    "garbage": b"\x00\xff\xfe not json",
}
FILES = ("state.json", "notify.json", "tofu.json", "history.jsonl")


def configure(site: LoopbackSite) -> None:
    """With [page] (history.jsonl) and [notify] (notify.json); port 9 on loopback is
    closed, so a delivery, if any, fails fast and is a warning."""
    text = site.config_text()
    text += f'\n[page]\ndir = "{site.root / "www"}"\nnameservers = false\n'
    text += '\n[notify]\n[[notify.webhook]]\nname = "hook"\nurl = "http://127.0.0.1:9/k"\n'
    site.config_path.write_text(text)


@pytest.mark.parametrize("name", FILES)
def test_a_damaged_own_file_is_set_aside_and_the_run_goes_on(site: LoopbackSite, name: str) -> None:
    configure(site)
    state = site.root / "state"
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    for case, damage in DAMAGE.items():
        # A history line without its newline is a torn write, cut without a word.
        raw = damage + (b"\n" if name == "history.jsonl" else b"")
        path = state / name
        path.write_bytes(raw)
        status = site.kissha("status", now=NOW)
        # 6 (critical): this site's nsd answers on 127.0.0.1 and ::1 only, not on the
        # nodes' addresses that status asks. Never 70, whatever the files hold.
        assert status.returncode == 6, f"{case}: {status.stdout}{status.stderr}"
        assert "problem: no nameserver reachable" in status.stdout
        assert "internal error" not in status.stderr
        assert path.read_bytes() == raw  # status moves nothing
        if name == "state.json":
            assert f"{path}: unreadable state (" in status.stdout, case
            assert "a real run sets it aside" in status.stdout

        r = site.kissha("failover", now=NOW)
        assert r.returncode == 0, f"{case}: {r.stdout}{r.stderr}"
        asides = sorted(state.glob(f"{name}.bad-*"))  # by the UTC time in the name
        assert asides, case
        warning = next(line for line in r.stdout.splitlines() if f"{path}: " in line)
        assert f"set aside as {asides[-1].name}" in warning, warning
        assert warning.startswith("warning: ")
        if name != "history.jsonl":  # the history's set-aside copy has this run's line too
            assert asides[-1].read_bytes() == raw
        # The next run is clean: the file was written afresh (or is not needed yet).
        r = site.kissha("failover", now=NOW)
        assert r.returncode == 0 and "set aside" not in r.stdout, r.stdout + r.stderr
    assert len(list(state.glob(f"{name}.bad-*"))) == 3


def test_a_damaged_state_in_json_output_and_a_dry_run(site: LoopbackSite) -> None:
    path = site.root / "state" / "state.json"
    path.write_bytes(b"[]")
    r = site.kissha("failover", "--dry-run", "--json", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    assert warnings == [
        f"{path}: unreadable state (state: not an object); a real run sets it aside"
    ]
    assert path.read_bytes() == b"[]"
