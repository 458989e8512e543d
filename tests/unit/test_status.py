"""kissha status: mapping answers to nodes, the verdict rules and the Nagios line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kissha.cli import main
from kissha.core.model import Event, Node, ProbeResult
from kissha.observe.statustext import as_json, nagios_line, text
from kissha.observe.verdict import (
    CRITICAL,
    OK,
    WARNING,
    NsView,
    Observation,
    Question,
    Report,
    judge,
    view,
)

NODES = (
    Node("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8:1::11"),
    Node("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8:1::12"),
)
NOW = 1_800_000_000.0
SOA = Question("example.org.", "example.org.", "SOA", "soa")
WWW_A = Question("example.org.", "www.example.org.", "A", "master")
WWW_AAAA = Question("example.org.", "www.example.org.", "AAAA", "master")
STANDBY_A = Question("example.org.", "standby.example.org.", "A", "standby")
FOO_A = Question("foo.zone.", "foo.zone.", "A", "master")
# perfdata: 'label'=value[UOM];[warn];[crit];[min];[max] (Nagios plugin guidelines)
PERFDATA = re.compile(r"^[a-z_]+=(U|-?[0-9.]+(s|%|B|c)?)(;[0-9.:~@]*){0,4}$")


def ns(node: str, family: str = "ipv4", master: str = "fishfinger", **kw: object) -> NsView:
    return NsView(
        node,
        family,  # type: ignore[arg-type]
        "addr",
        master=(master,),
        standby=("blowfish",),
        serials={"example.org.": "1700000000"},
        **kw,  # type: ignore[arg-type]
    )


def probe(node: str, ok: bool = True, required: bool = True) -> ProbeResult:
    return ProbeResult(node, "https", "ipv4", "addr", ok, "ok" if ok else "refused", required)


def observe(*views: NsView, last_run: float | None = NOW - 60, **kw: object) -> Observation:
    return Observation(
        now=NOW,
        views=views,
        probes=kw.pop("probes", (probe("fishfinger"), probe("blowfish"))),  # type: ignore[arg-type]
        nodes=("fishfinger", "blowfish"),
        last_run=last_run,
        stale_after=600,
        **kw,  # type: ignore[arg-type]
    )


ALL_FOUR = tuple(ns(n, f) for n in ("fishfinger", "blowfish") for f in ("ipv4", "ipv6"))


def test_view_maps_addresses_to_nodes() -> None:
    replies = {
        SOA: ("1700000001",),
        WWW_A: ("198.51.100.11",),
        WWW_AAAA: ("2001:db8:1:0::11",),
        STANDBY_A: ("198.51.100.12",),
    }
    v = view(NODES[1], "ipv6", replies, NODES)
    assert (v.node, v.family, v.address) == ("blowfish", "ipv6", "2001:db8:1::12")
    assert v.master == ("fishfinger",)
    assert v.standby == ("blowfish",)
    assert v.serials == {"example.org.": "1700000001"}
    assert v.error is None and v.problems == ()


def test_view_reports_errors_strangers_and_mixed() -> None:
    replies = {
        WWW_A: ("198.51.100.11",),
        FOO_A: ("198.51.100.12",),
        WWW_AAAA: ("2001:db8::99",),
        STANDBY_A: "REFUSED",
    }
    v = view(NODES[0], "ipv4", replies, NODES)
    assert v.master == ("fishfinger", "blowfish")
    assert "standby.example.org. A: REFUSED" in v.problems
    assert "www.example.org. AAAA: 2001:db8::99 is no node's address" in v.problems
    assert view(NODES[0], "ipv4", "timeout after 2 s", NODES).error == "timeout after 2 s"


def test_agreement_is_ok() -> None:
    v = judge(observe(*ALL_FOUR))
    assert v.level == OK
    assert v.summary == "all 4 nameservers point at fishfinger"
    assert nagios_line(v) == (
        "KISSHA OK - all 4 nameservers point at fishfinger | ns_agree=1;;;0;1 "
        "nameservers_up=4;;;0;4 probes_failed=0;;;0;2 last_run_age=60s;600;;0"
    )


def test_split_brain_is_critical() -> None:
    views = (
        ns("fishfinger", "ipv4"),
        ns("fishfinger", "ipv6"),
        ns("blowfish", "ipv4", master="blowfish"),
        ns("blowfish", "ipv6", master="blowfish"),
    )
    v = judge(observe(*views))
    assert v.level == CRITICAL
    assert v.summary == (
        "SPLIT BRAIN: fishfinger's nameserver points at fishfinger, "
        "blowfish's nameserver points at blowfish"
    )
    assert "ns_agree=0;;;0;1" in v.perfdata


def test_one_nameserver_answering_both_nodes_is_mixed_split() -> None:
    mixed = NsView("blowfish", "ipv4", "addr", master=("fishfinger", "blowfish"))
    v = judge(observe(ns("fishfinger"), mixed))
    assert v.level == CRITICAL
    assert "blowfish's nameserver points at blowfish + fishfinger (mixed" in v.summary


def test_one_family_disagreeing_is_split_too() -> None:
    v = judge(observe(ns("fishfinger", "ipv4"), ns("fishfinger", "ipv6", master="blowfish")))
    assert v.level == CRITICAL
    assert "mixed" in v.summary


def test_unreachable_nameserver_warns_and_the_rest_still_agree() -> None:
    down = NsView("blowfish", "ipv6", "2001:db8:1::12", error="timeout after 2 s")
    v = judge(observe(*ALL_FOUR[:3], down))
    assert v.level == WARNING
    assert v.summary == "all 3 answering nameservers point at fishfinger"
    assert v.problems == ("blowfish/ipv6 nameserver unreachable: timeout after 2 s",)
    assert "nameservers_up=3;;;0;4" in v.perfdata


def test_nothing_reachable_is_critical() -> None:
    views = [NsView(n.name, "ipv4", n.ipv4 or "", error="connection refused") for n in NODES]
    v = judge(observe(*views))
    assert v.level == CRITICAL
    assert v.summary == "no nameserver reachable (2 tried)"
    assert nagios_line(v).startswith("KISSHA CRITICAL - no nameserver reachable (2 tried); ")


def test_every_node_failing_its_probes_is_critical() -> None:
    v = judge(observe(*ALL_FOUR, probes=(probe("fishfinger", False), probe("blowfish", False))))
    assert v.level == CRITICAL
    assert v.summary == "every node fails its probes from here"
    assert "probes_failed=2;;;0;2" in v.perfdata


def test_failed_informational_probe_warns() -> None:
    probes = (probe("fishfinger"), probe("blowfish"), probe("blowfish", False, required=False))
    v = judge(observe(*ALL_FOUR, probes=probes))
    assert v.level == WARNING
    assert v.problems == ("probe https of blowfish/ipv4 failed (informational): refused",)


def test_stale_or_missing_state_warns() -> None:
    stale = judge(observe(*ALL_FOUR, last_run=NOW - 3 * 3600))
    assert stale.level == WARNING
    assert stale.problems == ("stale state: last run 3h ago (limit 10m)",)
    assert "last_run_age=10800s;600;;0" in stale.perfdata
    missing = judge(observe(*ALL_FOUR, last_run=None))
    assert missing.problems == ("stale state: no failover run recorded",)
    assert "last_run_age=U" in missing.perfdata


def test_serials_differing_is_only_a_note() -> None:
    other = NsView(
        "blowfish", "ipv4", "addr", master=("fishfinger",), serials={"example.org.": "1700000009"}
    )
    v = judge(observe(ns("fishfinger"), other))
    assert v.level == OK
    assert v.notes == (
        "serials of example.org. differ (each node has its own zones): "
        "fishfinger/ipv4 1700000000, blowfish/ipv4 1700000009",
    )


def test_nagios_line_is_one_line_with_valid_perfdata() -> None:
    down = NsView("blowfish", "ipv4", "x", error="bad | pipe\nnewline")
    for v in (judge(observe(*ALL_FOUR)), judge(observe(ns("fishfinger"), down, last_run=None))):
        line = nagios_line(v)
        assert "\n" not in line and line.count("|") == 1
        assert re.match(r"^KISSHA (OK|WARNING|CRITICAL) - [^|]+ \| ", line)
        for item in line.split(" | ")[1].split(" "):
            assert PERFDATA.match(item), item


def test_text_and_json_render() -> None:
    obs = observe(
        *ALL_FOUR, events=(Event.from_json({"time": NOW - 60, "kind": "failover", "message": "m"}),)
    )
    report = Report(obs, judge(obs))
    out = text(report)
    assert "fishfinger/ipv4  master names -> fishfinger, standby names -> blowfish" in out
    assert out.endswith("OK: all 4 nameservers point at fishfinger\n")
    data = as_json(report)
    assert data["schema"] == "kissha.status/1" and data["status"] == "OK"
    assert {tuple(n["master"]) for n in data["nameservers"]} == {("fishfinger",)}


def test_cli_config_error_is_unknown_for_nagios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none.toml")
    assert main(["-c", missing, "status"]) == 2
    capsys.readouterr()
    assert main(["-c", missing, "status", "--nagios"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("KISSHA UNKNOWN - ") and out.count("\n") == 1
    assert main(["-c", missing, "status", "--nagios", "--stale-after", "soon"]) == 3
    assert "--stale-after: not a duration: 'soon'" in capsys.readouterr().out


def test_questions_stop_at_the_bound_and_never_read_the_zones_past_it(tmp_path: Path) -> None:
    """40 names from the first zones on; the rest are counted, not read: the last zone's
    file does not even exist, which reading it would raise."""
    from kissha.config import parse
    from kissha.observe.asking import questions
    from kissha.observe.verdict import MAX_NAMES

    for i in range(15):
        (tmp_path / f"z{i:02}.example.zone").write_text(
            f"$ORIGIN z{i:02}.example.\n@ IN SOA ns h 1 1 1 1 1\n"
            "www 300 IN A 198.51.100.11 ; Enable failover\n"
            "www 300 IN AAAA 2001:db8:1::11 ; Enable failover\n"
            "standby 300 IN A 198.51.100.12 ; Enable failover\n"
            "standby 300 IN AAAA 2001:db8:1::12 ; Enable failover\n"
        )
    cfg = parse(
        {
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "198.51.100.11"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "198.51.100.12"},
            },
            "dns": {
                "zones_dir": str(tmp_path),
                "zones": ["*.zone", {"name": "gone.example", "file": "missing.zone"}],
            },
        },
        base=tmp_path,
    )
    qs, skipped = questions(cfg)
    assert len([q for q in qs if q.role != "soa"]) == MAX_NAMES == 40
    assert {q.zone for q in qs} == {f"z{i:02}.example." for i in range(10)}
    assert skipped == 6  # five zones past the bound, and the missing file, never opened
