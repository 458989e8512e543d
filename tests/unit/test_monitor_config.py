"""[monitor] in the config and the checks generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kissha import config as configmod
from kissha.errors import ConfigError
from kissha.monitor import checks

BASE: dict[str, Any] = {
    "nodes": {
        "fishfinger": {
            "fqdn": "fishfinger.example.org",
            "ipv4": "203.0.113.10",
            "ipv6": "2001:db8::10",
        },
        "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "203.0.113.20"},
    },
    "dns": {"zones_dir": "."},
    "sites": [{"name": "example.org"}],
}


def parse(monitor: dict[str, Any] | None = None, **extra: Any) -> configmod.Config:
    data = {**BASE, **extra}
    if monitor is not None:
        data["monitor"] = monitor
    return configmod.parse(data, base=Path("/"))


def test_zero_lines_give_the_original_set() -> None:
    cfg = parse()
    assert not cfg.monitor.configured
    ids = [s.id for s in checks.for_node(cfg, None, "fishfinger")]
    assert ids[:3] == ["ping/fishfinger/ipv4", "https/fishfinger/ipv4", "dns/fishfinger/ipv4"]
    assert "cert/standby.example.org/blowfish" in ids and "http/www.example.org/ipv6" in ids
    assert "http/standby.example.org/ipv6" not in ids  # the standby, blowfish, has no IPv6
    assert ids[-3:] == ["disk", "load", "swap"]
    by_id = {s.id: s for s in checks.for_node(cfg, None, "fishfinger")}
    assert by_id["http/standby.example.org/ipv4"].depends == ("ping/blowfish/ipv4",)
    assert by_id["cert/example.org/fishfinger"].warn_days == 20


def test_checks_added_changed_excluded_and_only_on_some_nodes() -> None:
    cfg = parse(
        {
            "exclude": ["cert/*/blowfish"],
            "checks": [
                {
                    "id": "ntp",
                    "argv": ["/bin/true"],
                    "depends": ["ping/blowfish/ipv4"],
                    "nodes": ["blowfish"],
                },
                {"id": "http/example.org/ipv4", "quiet": ["22:00-07:00"], "retries": 0},
                {"id": "swap", "enabled": False},
            ],
        }
    )
    on_f = {s.id: s for s in checks.for_node(cfg, None, "fishfinger")}
    on_b = {s.id: s for s in checks.for_node(cfg, None, "blowfish")}
    assert "ntp" not in on_f and on_b["ntp"].kind == "plugin" and on_b["ntp"].scope == "local"
    assert on_f["http/example.org/ipv4"].quiet == ((22 * 60, 7 * 60),)
    assert on_f["http/example.org/ipv4"].retries == 0
    assert "swap" not in on_f and not any(
        i.startswith("cert/") and i.endswith("/blowfish") for i in on_f
    )


@pytest.mark.parametrize(
    ("monitor", "message"),
    [
        (
            {"quiet": ["22-7"]},
            "monitor.quiet[0]: not a range of the day like '22:00-07:00': '22-7'",
        ),
        ({"renotify": "7am"}, "monitor.renotify: a time of day like '07:00', or 'off': '7am'"),
        ({"weekly": "someday 07:00"}, "monitor.weekly: a day and time like 'mon 07:00', or 'off'"),
        ({"timezone": "Mars/Olympus"}, "monitor.timezone: no such time zone: 'Mars/Olympus'"),
        ({"cert_crit_days": 30}, "monitor.cert_crit_days: must be <= cert_warn_days (20)"),
        (
            {"checks": [{"id": "x", "kind": "tcp"}]},
            "monitor.checks[0].node: missing (a tcp check needs it)",
        ),
        (
            {"checks": [{"id": "x", "argv": ["/bin/true"], "node": "fish"}]},
            "monitor.checks[0].node: no such node: 'fish'",
        ),
        ({"timeout": "soon"}, "monitor.timeout: not a duration (e.g. 30s, 5m, 1h): 'soon'"),
        (
            {"every": 5, "concurency": 3},
            "monitor.concurency: unknown key (did you mean 'concurrency'?)",
        ),
    ],
)
def test_config_errors_name_the_key(monitor: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(monitor)
    assert any(p.startswith(message) for p in exc.value.problems), exc.value.problems


def test_unknown_generated_id_and_cycles_are_errors() -> None:
    cfg = parse(
        {
            "checks": [
                {"id": "nope", "retries": 1},
                {"id": "a", "argv": ["/bin/true"], "depends": ["b"]},
                {"id": "b", "argv": ["/bin/true"], "depends": ["a"]},
            ]
        }
    )
    with pytest.raises(ConfigError) as exc:
        checks.for_node(cfg, None, "fishfinger")
    text = str(exc.value)
    assert "monitor.checks[0]: no generated check is named 'nope'" in text
    assert "dependency cycle: a -> b -> a" in text
