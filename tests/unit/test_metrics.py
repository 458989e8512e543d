"""Prometheus metrics: render a synthetic run and parse it back with a strict parser."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kissha.core.model import Decision, NodeHealth, ProbeResult, Roles
from kissha.core.report import Outcome, RunReport
from kissha.engine import state as statefile
from kissha.engine.failover import _remember
from kissha.observe import metrics

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Sample = tuple[tuple[tuple[str, str], ...], float]


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """name="value",... with \\\\, \\" and \\n escapes; anything else is an error."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        m = LABEL_NAME_RE.match(text, i)
        assert m, f"bad label name at {text[i:]!r}"
        name = m.group(0)
        i = m.end()
        assert text[i : i + 2] == '="', f"bad label at {text[i:]!r}"
        i += 2
        value = []
        while True:
            assert i < len(text), "unterminated label value"
            c = text[i]
            if c == "\\":
                nxt = text[i + 1]
                assert nxt in '\\"n', f"bad escape \\{nxt}"
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                assert c != "\n"
                value.append(c)
                i += 1
        out.append((name, "".join(value)))
        if i < len(text):
            assert text[i] == ",", f"expected ',' at {text[i:]!r}"
            i += 1
    names = [n for n, _ in out]
    assert len(set(names)) == len(names), "a label twice"
    return tuple(out)


def parse(text: str) -> dict[str, tuple[str, str, list[Sample]]]:
    """Strict text exposition format 0.0.4: every family has HELP then TYPE, then its
    samples; no family twice; no sample twice; values are floats."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, str, list[Sample]]] = {}
    current: str | None = None
    lines = text[:-1].split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            assert NAME_RE.match(name) and name not in families, line
            kind_line = lines[i + 1]
            assert kind_line.startswith(f"# TYPE {name} "), kind_line
            kind = kind_line.split(" ")[3]
            assert kind in ("gauge", "counter"), kind
            families[name] = (help_text, kind, [])
            current = name
            i += 2
            continue
        m = SAMPLE_RE.match(line)
        assert m and current is not None, f"not a sample: {line!r}"
        assert m.group(1) == current, f"{m.group(1)} outside its family"
        labels = parse_labels(m.group(2) or "")
        value = float(m.group(3))
        samples = families[current][2]
        assert labels not in [s[0] for s in samples], f"duplicate sample: {line!r}"
        samples.append((labels, value))
        i += 1
    return families


def values(families: dict[str, tuple[str, str, list[Sample]]], name: str) -> dict[str, float]:
    return {",".join(f"{k}={v}" for k, v in labels): val for labels, val in families[name][2]}


def synthetic() -> tuple[RunReport, statefile.State]:
    probes = [
        ProbeResult("fishfinger", "https", "ipv4", "198.51.100.11", False, "refused"),
        ProbeResult("fishfinger", "https", "ipv6", "2001:db8::11", False, "timeout"),
        ProbeResult("blowfish", "https", "ipv4", "198.51.100.12", True, "ok", latency_ms=12.5),
        ProbeResult("blowfish", "https", "ipv6", "2001:db8::12", True, "ok", latency_ms=20.0),
        ProbeResult("blowfish", 'we"ird\\pro\nbe', "ipv4", "198.51.100.12", True, "ok", False),
    ]
    roles = Roles("blowfish", "fishfinger", ("blowfish", "fishfinger"))
    decision = Decision(
        roles,
        {"fishfinger": NodeHealth(False, 3, 0), "blowfish": NodeHealth(True, 0, 9)},
    )
    report = RunReport(
        1_800_000_000.25,
        False,
        tuple(probes),
        decision,
        Roles("fishfinger", "blowfish"),
        outcome=Outcome.ROLLED_BACK,
        timings={"total": 0.75},
    )
    st = statefile.State(
        roles=roles, failovers=4, rollbacks=2, failbacks=3, rotations=7, record_changes=1
    )
    return report, st


def test_render_parses_strictly_with_the_expected_values() -> None:
    report, st = synthetic()
    families = parse(metrics.render(report, st))
    assert set(families) == {
        "kissha_probe_success",
        "kissha_probe_latency_seconds",
        "kissha_node_up",
        "kissha_master",
        "kissha_failovers_total",
        "kissha_failbacks_total",
        "kissha_rotations_total",
        "kissha_record_changes_total",
        "kissha_rollbacks_total",
        "kissha_last_run_timestamp_seconds",
        "kissha_last_run_duration_seconds",
        "kissha_last_run_exit_code",
    }
    assert families["kissha_failovers_total"][1] == "counter"
    assert families["kissha_probe_success"][1] == "gauge"
    assert values(families, "kissha_probe_success") == {
        "node=fishfinger,family=ipv4,probe=https": 0,
        "node=fishfinger,family=ipv6,probe=https": 0,
        "node=blowfish,family=ipv4,probe=https": 1,
        "node=blowfish,family=ipv6,probe=https": 1,
        'node=blowfish,family=ipv4,probe=we"ird\\pro\nbe': 1,
    }
    # Probes without a latency (no answer) have no latency sample.
    assert values(families, "kissha_probe_latency_seconds") == {
        "node=blowfish,family=ipv4,probe=https": 0.0125,
        "node=blowfish,family=ipv6,probe=https": 0.02,
    }
    assert values(families, "kissha_node_up") == {"node=fishfinger": 0, "node=blowfish": 1}
    assert values(families, "kissha_master") == {"node=fishfinger": 0, "node=blowfish": 1}
    # Each kind of change on its own counter: an alert on failovers never fires weekly.
    assert values(families, "kissha_failovers_total") == {"": 4}
    assert values(families, "kissha_failbacks_total") == {"": 3}
    assert values(families, "kissha_rotations_total") == {"": 7}
    assert values(families, "kissha_record_changes_total") == {"": 1}
    assert families["kissha_rotations_total"][1] == "counter"
    assert values(families, "kissha_rollbacks_total") == {"": 2}
    assert values(families, "kissha_last_run_timestamp_seconds") == {"": 1_800_000_000.25}
    assert values(families, "kissha_last_run_duration_seconds") == {"": 0.75}
    assert values(families, "kissha_last_run_exit_code") == {"": 3}


def test_label_values_are_escaped() -> None:
    report, st = synthetic()
    text = metrics.render(report, st)
    assert 'probe="we\\"ird\\\\pro\\nbe"' in text
    assert metrics.escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_no_roles_yet_means_no_master() -> None:
    report, _ = synthetic()
    families = parse(metrics.render(report, statefile.State()))
    assert values(families, "kissha_master") == {"node=fishfinger": 0, "node=blowfish": 0}
    assert values(families, "kissha_failovers_total") == {"": 0}


@pytest.mark.parametrize(
    ("value", "text"), [(1, "1"), (0.5, "0.5"), (math.inf, "+Inf"), (math.nan, "NaN")]
)
def test_numbers(value: float, text: str) -> None:
    assert metrics._number(value) == text


def test_write_textfile_is_atomic_and_reports_failures(tmp_path: Path) -> None:
    report, st = synthetic()
    path = tmp_path / "kissha.prom"
    assert metrics.write_textfile(path, report, st) is None
    parse(path.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["kissha.prom"]
    warning = metrics.write_textfile(tmp_path / "missing" / "kissha.prom", report, st)
    assert warning is not None and "metrics.textfile: cannot write" in warning


def test_counters_persist_and_old_state_files_load(tmp_path: Path) -> None:
    report, st = synthetic()
    report = replace(report, outcome=Outcome.CHANGED, plans=())
    st = statefile.State(roles=Roles("fishfinger", "blowfish"))
    from kissha.config import parse as parse_config

    config = parse_config(
        {
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "198.51.100.11"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "198.51.100.12"},
            },
            "dns": {"zones_dir": str(tmp_path)},
        }
    )
    report = replace(report, previous=st.roles)
    _remember(config, st, report)
    assert st.failovers == 1 and st.rollbacks == 0
    report = replace(report, outcome=Outcome.ROLLED_BACK)
    _remember(config, st, report)
    assert st.rollbacks == 1
    statefile.save(tmp_path, st)
    loaded, warning = statefile.load(tmp_path)
    assert warning is None and (loaded.failovers, loaded.rollbacks) == (1, 1)
    # A state file from before the counters existed loads with zeros.
    data = json.loads(statefile.state_path(tmp_path).read_text())
    del data["counters"]
    statefile.state_path(tmp_path).write_text(json.dumps(data))
    loaded, warning = statefile.load(tmp_path)
    assert warning is None and (loaded.failovers, loaded.rollbacks) == (0, 0)


CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def test_config_daemon_and_metrics_keys() -> None:
    from kissha import config as configmod

    cfg = configmod.load(CONFIG_DIR / "good-daemon-metrics.toml")
    assert cfg.daemon.interval == 0.25
    assert cfg.metrics.textfile == CONFIG_DIR / "textfile" / "kissha.prom"
    assert cfg.metrics.listen == ("::1", 9469)
    minimal = configmod.load(CONFIG_DIR / "good-minimal.toml")
    assert minimal.daemon.interval == 60.0
    assert minimal.metrics.textfile is None and minimal.metrics.listen is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:9469", ("127.0.0.1", 9469)),
        ("[::1]:9469", ("::1", 9469)),
        ("localhost:80", ("localhost", 80)),
        ("::1:9469", None),
        ("127.0.0.1", None),
        ("127.0.0.1:0", None),
        (":9469", None),
        ("bad host:1", None),
    ],
)
def test_parse_listen(text: str, parsed: tuple[str, int] | None) -> None:
    from kissha.config.tomlcheck import parse_listen

    assert parse_listen(text) == parsed


def test_a_cron_run_does_not_import_metrics_http_or_the_page() -> None:
    import subprocess
    import sys

    optional = ("kissha.observe.metrics", "kissha.engine.daemon", "http.server", "html")
    optional += (
        "kissha.observe.page",
        "kissha.observe.pagehtml",
        "kissha.observe.timeline",
        "kissha.observe.history",
    )
    # Nor other commands' parsers, nor the tables a failover run does not read (the whole
    # run is held to this in tests/integration/test_failover_nsd.py).
    optional += (
        "kissha.certs.command",
        "kissha.monitor.command",
        "kissha.render.init",
        "kissha.config.monitor",
        "kissha.config.sites",
    )
    code = (
        "import sys, kissha.cli, kissha.engine.failover, kissha.output\n"
        "kissha.cli._parser('failover')\n"
        f"print(sorted(m for m in {optional!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_reference_parser_reads_the_same_samples() -> None:
    """prometheus_client's own parser (what scrapers build on) agrees with ours."""
    from prometheus_client import parser  # a test dependency (pyproject.toml)

    report, st = synthetic()
    text = metrics.render(report, st)
    ours = parse(text)
    theirs: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in parser.text_string_to_metric_families(text):
        for sample in fam.samples:
            labels = tuple(sorted(sample.labels.items()))
            theirs.setdefault(sample.name, {})[labels] = sample.value
    assert set(theirs) == set(ours)
    for name, (_, _, samples) in ours.items():
        assert theirs[name] == {tuple(sorted(labels)): value for labels, value in samples}
