"""The page's history: buckets per node/family, folded at the file's tail, trimmed, and
robust to torn and unreadable files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kissha.core.model import ProbeResult
from kissha.observe import history
from kissha.observe.history import Bucket, Stats, bucket_of, bucket_width

T0 = 1_795_000_040  # a minute boundary plus 20 s


def probes(ok: bool = True, latency: float | None = 10.0) -> list[ProbeResult]:
    return [
        ProbeResult("fishfinger", "https", "ipv4", "a", ok, "d", latency_ms=latency),
        ProbeResult("fishfinger", "smtp", "ipv4", "a", False, "d", required=False, latency_ms=30.0),
        ProbeResult("blowfish", "https", "ipv6", "b", True, "d", latency_ms=20.0),
    ]


def lines(state_dir: Path) -> list[bytes]:
    return history.history_path(state_dir).read_bytes().splitlines()


def test_bucket_width_keeps_about_4320_buckets() -> None:
    assert [bucket_width(d) for d in (1, 3, 4, 6, 7, 31)] == [60, 60, 120, 120, 180, 660]
    assert all(d * 86400 / bucket_width(d) <= 4320 for d in range(1, 32))


def test_one_run_is_a_bucket_per_series() -> None:
    b = bucket_of(T0, probes(ok=False, latency=None), 60)
    assert b.start == T0 - 20 and b.runs == 1
    fish = b.series["fishfinger/ipv4"]
    # the informational smtp failure is counted as a probe, not as a failure
    assert (fish.probes, fish.failures, fish.timed) == (2, 1, 1)
    assert (fish.low, fish.total, fish.high) == (30.0, 30.0, 30.0)
    assert b.series["blowfish/ipv6"].mean == 20.0


def test_runs_in_the_same_bucket_fold_into_one_line(tmp_path: Path) -> None:
    for i in range(30):  # a daemon at 2 s: one line a minute, not 30
        assert history.record(tmp_path, T0 + 2 * i, probes(latency=float(i)), 3) is None
    assert len(lines(tmp_path)) == 2  # T0 + 20 .. T0 + 78 spans two minutes
    history.record(tmp_path, T0 + 3600, probes(), 3)
    buckets, warning = history.load(tmp_path, 0)
    assert warning is None
    assert [b.start for b in buckets] == [T0 - 20, T0 + 40, T0 + 3600 - 20]
    assert [b.runs for b in buckets] == [20, 10, 1]
    first = buckets[0].series["fishfinger/ipv4"]
    assert (first.probes, first.low, first.high) == (40, 0.0, 30.0)


def test_a_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    history.record(tmp_path, T0, probes(), 3)
    path = history.history_path(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"t": 17950')  # a crash in the middle of a write
    assert history.load(tmp_path, 0)[1] == f"page: {path}: 1 unreadable line(s) skipped"
    assert history.record(tmp_path, T0 + 60, probes(), 3) is None
    buckets, warning = history.load(tmp_path, 0)
    assert warning is None
    assert [b.start for b in buckets] == [T0 - 20, T0 + 40]


def test_an_unreadable_file_starts_afresh_with_a_warning(tmp_path: Path) -> None:
    path = history.history_path(tmp_path)
    path.write_bytes(b"\x00\xff garbage\nmore garbage\n")
    warning = history.record(tmp_path, T0, probes(), 3)
    assert warning == f"page: {path}: 2 unreadable line(s) dropped"
    assert len(lines(tmp_path)) == 1
    assert history.load(tmp_path, 0) == ([bucket_of(T0, probes(), 60)], None)


def test_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert history.load(tmp_path, 0) == ([], None)


def test_a_rewrite_now_and_then_drops_old_lines_and_merges_older_ones(tmp_path: Path) -> None:
    path = history.history_path(tmp_path)
    day = 86400
    assert history.column_width(1) == 300 and history.max_lines(1) == 288 + 180
    rewrites = 0
    inode = 0
    for minute in range(0, 2 * day, 60):  # two days of cron, with a one-day history
        history.record(tmp_path, T0 + minute, probes(), 1)
        rewrites += path.stat().st_ino != inode
        inode = path.stat().st_ino
        assert len(lines(tmp_path)) <= history.max_lines(1) + 1
    assert 20 <= rewrites <= 2 * 24 + 1  # about once an hour, never at every run
    now = T0 + 2 * day - 60
    buckets, warning = history.load(tmp_path, 0)
    assert warning is None
    assert buckets[0].start >= now - day - 300 - history.SLACK
    fine = [b for b in buckets if b.start >= now - history.FINE_FOR]
    assert all(b.runs == 1 for b in fine) and len(fine) >= 120
    coarse = [b for b in buckets if b.start < now - history.FINE_FOR - history.SLACK - 300]
    assert all(b.start % 300 == 0 and b.runs == 5 for b in coarse[1:])
    # nothing is lost in the merge: every run since the oldest line is still counted
    assert sum(b.runs for b in buckets) == (now - buckets[0].start) // 60 + 1


def test_compact_is_pure_and_keeps_counts() -> None:
    now = T0 + 3 * 86400
    buckets = [bucket_of(now - 60 * i, probes(), 60) for i in range(3 * 1440 + 100)]
    compacted = history.compact(buckets, now, 3)
    assert len(compacted) <= history.max_lines(3)
    assert compacted[0].start >= now - 3 * 86400 - 900
    kept = [b for b in buckets if b.start >= compacted[0].start]
    assert history.summary(compacted) == history.summary(kept)
    assert [b.start for b in compacted] == sorted({b.start for b in compacted})


def test_a_clock_going_back_merges_on_reading(tmp_path: Path) -> None:
    history.record(tmp_path, T0, probes(), 3)
    history.record(tmp_path, T0 + 120, probes(), 3)
    history.record(tmp_path, T0 + 5, probes(), 3)  # same minute as the first, appended
    assert len(lines(tmp_path)) == 3
    buckets, _ = history.load(tmp_path, 0)
    assert [(b.start, b.runs) for b in buckets] == [(T0 - 20, 2), (T0 + 100, 1)]


def test_load_keeps_only_the_period(tmp_path: Path) -> None:
    for i in range(5):
        history.record(tmp_path, T0 + 60 * i, probes(), 3)
    buckets, _ = history.load(tmp_path, T0 + 100)
    assert [b.start for b in buckets] == [T0 + 100, T0 + 160, T0 + 220]


def test_a_long_line_is_found_at_the_tail(tmp_path: Path) -> None:
    many = [
        ProbeResult(f"node{i}", "https", "ipv4", "a", True, "d", latency_ms=1.0)
        for i in range(history.TAIL // 20)
    ]
    history.record(tmp_path, T0, many, 3)
    history.record(tmp_path, T0 + 1, many, 3)
    assert len(lines(tmp_path)) == 1
    assert history.load(tmp_path, 0)[0][0].runs == 2


def test_stats_round_trip_and_reject_junk() -> None:
    s = Stats(3, 1, 2, 1.5, 4.0, 2.5)
    assert Stats.from_list(s.to_list()) == s
    assert Stats.from_list(Stats().to_list()).low == math.inf
    with pytest.raises(ValueError):
        Stats.from_list(["3", 1, 2, 1.5, 4.0, 2.5])
    with pytest.raises(ValueError):
        Bucket.from_line(b'{"t": "soon"}')


def test_summary() -> None:
    buckets = [bucket_of(T0, probes(), 60), bucket_of(T0 + 60, probes(ok=False), 60)]
    assert history.summary(buckets)["fishfinger/ipv4"] == {
        "probes": 4,
        "failures": 1,
        "latency_ms": {"min": 10.0, "mean": 20.0, "max": 30.0},
    }
