"""The status page's memory: probe counts, failures and latency per node/family, in
time buckets, in ``state_dir/history.jsonl``.

One line per bucket::

    {"t": 1700000040, "r": 2, "s": {"fishfinger/ipv4": [6, 0, 6, 31.2, 240.5, 52.0]}}

``t`` is the bucket's start (epoch seconds), ``r`` the runs folded into it, and each
series is [probes, failures of required probes, probes with a latency, min, sum and max
latency in ms]. A run folds itself into the last line when it falls in the same
one-minute bucket (a daemon at 1 s rewrites one line, it does not add 60), so a run
reads and writes only the file's tail.

About once an hour a rewrite drops what is older than the history and merges buckets
older than two hours into the timeline's columns (15 minutes for 3 days): the page
cannot show more detail than that, and a 3-day file then holds ~470 lines, not 4,320,
so writing the page reads 60 KB instead of 800. The file is informational: a torn last
line (a crash mid-write) is cut off, unreadable lines are skipped with a warning, and
nothing here can fail a run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kissha.core.model import ProbeResult

log = logging.getLogger(__name__)

FILE = "history.jsonl"
DAY = 86400
TAIL = 16384  # bytes read from the end to find the last line; doubled when too short
MAX_LINE = 1 << 20  # a "line" longer than this is damage, not a bucket
_NUMBERS = {int, float}  # JSON numbers (not bool, which isinstance would let in)


COLUMNS = 288  # the timeline's columns: 15 minutes each over 3 days
FINE_FOR = 2 * 3600  # the last two hours keep their one-minute buckets
SLACK = 3600  # a rewrite when the file holds about an hour more than it needs


def bucket_width(days: int) -> int:
    """Seconds per fresh bucket: a minute up to 3 days, wider for longer histories."""
    return 60 * max(1, math.ceil(days / 3))


def column_width(days: int) -> int:
    """Seconds per timeline column, a multiple of the bucket width: what older buckets
    are merged into."""
    width = bucket_width(days)
    return max(width, days * DAY // COLUMNS // width * width)


def max_lines(days: int) -> int:
    """How many lines the file may grow to before a rewrite compacts it."""
    return math.ceil(days * DAY / column_width(days)) + (FINE_FOR + SLACK) // bucket_width(days)


@dataclass
class Stats:
    """One series in one bucket."""

    probes: int = 0
    failures: int = 0
    timed: int = 0  # probes that measured a latency (a refused connection has none)
    low: float = math.inf
    total: float = 0.0
    high: float = 0.0

    def add(self, other: Stats) -> None:
        self.probes += other.probes
        self.failures += other.failures
        self.timed += other.timed
        self.low = min(self.low, other.low)
        self.total += other.total
        self.high = max(self.high, other.high)

    def copy(self) -> Stats:
        return Stats(self.probes, self.failures, self.timed, self.low, self.total, self.high)

    @property
    def mean(self) -> float | None:
        return self.total / self.timed if self.timed else None

    def to_list(self) -> list[float]:
        low = 0.0 if self.timed == 0 else self.low
        return [
            self.probes,
            self.failures,
            self.timed,
            round(low, 1),
            round(self.total, 1),
            round(self.high, 1),
        ]

    @classmethod
    def from_list(cls, raw: Sequence[Any]) -> Stats:
        if not set(map(type, raw)) <= _NUMBERS:  # one pass in C: reading 3 days is 17k
            raise ValueError(f"not numbers: {raw!r}")
        probes, failures, timed, low, total, high = raw
        return cls(
            int(probes),
            int(failures),
            int(timed),
            float(low) if timed else math.inf,
            float(total),
            float(high),
        )


@dataclass
class Bucket:
    start: int
    runs: int = 0
    series: dict[str, Stats] = field(default_factory=dict)

    def add(self, other: Bucket) -> None:
        self.runs += other.runs
        for key, stats in other.series.items():
            self.series.setdefault(key, Stats()).add(stats)

    def to_line(self) -> bytes:
        data = {
            "t": self.start,
            "r": self.runs,
            "s": {k: self.series[k].to_list() for k in sorted(self.series)},
        }
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Bucket:
        return cls.from_json(json.loads(line))

    @classmethod
    def from_json(cls, data: Any) -> Bucket:
        if not isinstance(data, dict) or not isinstance(data.get("t"), int):
            raise ValueError("not a bucket")
        series = data.get("s", {})
        if not isinstance(series, dict):
            raise ValueError("not a bucket")
        return cls(
            data["t"],
            int(data.get("r", 0)),
            {str(k): Stats.from_list(v) for k, v in series.items()},
        )


def series_key(node: str, family: str) -> str:
    return f"{node}/{family}"


def bucket_of(now: float, probes: Iterable[ProbeResult], width: int) -> Bucket:
    """One run's probes as a bucket (pure)."""
    bucket = Bucket(int(now // width * width), runs=1)
    for p in probes:
        stats = bucket.series.setdefault(series_key(p.node, p.family), Stats())
        stats.probes += 1
        stats.failures += int(p.required and not p.ok)
        if p.latency_ms is not None:
            stats.timed += 1
            stats.low = min(stats.low, p.latency_ms)
            stats.total += p.latency_ms
            stats.high = max(stats.high, p.latency_ms)
    return bucket


def merged(buckets: Iterable[Bucket]) -> list[Bucket]:
    """Buckets in time order, those with the same start folded together (a clock that
    went back, or ``--now``, can append a bucket out of order)."""
    by_start: dict[int, Bucket] = {}
    for b in buckets:
        if b.start in by_start:
            by_start[b.start].add(b)
        else:
            by_start[b.start] = Bucket(b.start, b.runs, {k: v.copy() for k, v in b.series.items()})
    return [by_start[t] for t in sorted(by_start)]


def compact(buckets: Iterable[Bucket], now: float, days: int) -> list[Bucket]:
    """Drop buckets older than the history; merge those older than FINE_FOR into
    column-wide buckets (pure)."""
    coarse = column_width(days)
    keep_from = (now - days * DAY) // coarse * coarse
    fine_from = now - FINE_FOR
    kept = []
    for b in buckets:
        if b.start < keep_from:
            continue
        if b.start < fine_from:
            b = Bucket(b.start // coarse * coarse, b.runs, b.series)
        kept.append(b)
    return merged(kept)


# -- the file (I/O) --------------------------------------------------------------------


def history_path(state_dir: Path) -> Path:
    return state_dir / FILE


def record(state_dir: Path, now: float, probes: Sequence[ProbeResult], days: int) -> str | None:
    """Fold one run into the history; returns a warning instead of raising."""
    path = history_path(state_dir)
    new = bucket_of(now, probes, bucket_width(days))
    try:
        size, line = _append(path, new)
        return _trim(path, now, days, size, line)
    except OSError as exc:
        warning = f"page: cannot write the history {path}: {exc.strerror or exc}"
        log.warning(warning)
        return warning


def _append(path: Path, new: Bucket) -> tuple[int, int]:
    """Fold or append ``new``; returns the file's size and the written line's length."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        start, end, last = _last_line(f, size)
        if last is not None and last.start == new.start:
            last.add(new)
            new, end = last, start
        f.truncate(end)  # also cuts a torn last line (a crash mid-write)
        f.seek(end)
        line = new.to_line()
        f.write(line)
        return end + len(line), len(line)


def _last_line(f: Any, size: int) -> tuple[int, int, Bucket | None]:
    """(start, end, bucket) of the last complete line; end is where writing goes on."""
    chunk = TAIL
    while True:
        begin = max(0, size - chunk)
        f.seek(begin)
        data = f.read(size - begin)
        end_in = data.rfind(b"\n") + 1  # 0: no complete line in the chunk
        if end_in == 0 and begin > 0 and chunk < MAX_LINE:
            chunk *= 2
            continue
        end = begin + end_in
        if end_in == 0:
            return end, end, None
        start_in = data.rfind(b"\n", 0, end_in - 1) + 1
        if start_in == 0 and begin > 0:
            if chunk < MAX_LINE:
                chunk *= 2
                continue
            return end, end, None
        try:
            return begin + start_in, end, Bucket.from_line(data[start_in:end_in])
        except (ValueError, TypeError):
            return end, end, None


def _first_start(path: Path) -> int | None:
    """The first line's bucket start; None when it cannot be read."""
    with path.open("rb") as f:
        line = f.readline(MAX_LINE)
    try:
        return Bucket.from_line(line).start
    except (ValueError, TypeError):
        return None


def _trim(path: Path, now: float, days: int, size: int, line: int) -> str | None:
    """Compact the file when it holds about an hour more lines than it needs, or its
    oldest line is older than the history, or unreadable; an unreadable file is thereby
    started afresh, with a warning."""
    first = _first_start(path)
    old = first is None or first < now - days * DAY - column_width(days) - SLACK
    if not old and size <= max_lines(days) * line:  # the last line's length: an estimate
        return None
    buckets, bad = _read(path)
    from kissha.files import atomic_write

    atomic_write(path, b"".join(b.to_line() for b in compact(buckets, now, days)), mode=0o644)
    if bad:
        warning = f"page: {path}: {bad} unreadable line(s) dropped"
        log.warning(warning)
        return warning
    return None


def _read(path: Path) -> tuple[list[Bucket], int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    try:  # the usual case, every line sound: one json.loads for the whole file
        return [Bucket.from_json(d) for d in json.loads(b"[" + b",".join(lines) + b"]")], 0
    except (ValueError, TypeError):
        pass
    buckets: list[Bucket] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            buckets.append(Bucket.from_line(line))
        except (ValueError, TypeError):
            bad += 1
    return buckets, bad


def load(state_dir: Path, since: float) -> tuple[list[Bucket], str | None]:
    """The buckets that start at ``since`` or later, in time order, and a warning when
    some lines could not be read (a torn last line written right now counts too)."""
    path = history_path(state_dir)
    try:
        buckets, bad = _read(path)
    except OSError as exc:
        return [], f"page: cannot read the history {path}: {exc.strerror or exc}"
    warning = f"page: {path}: {bad} unreadable line(s) skipped" if bad else None
    return merged(b for b in buckets if b.start >= since), warning


def summary(buckets: Sequence[Bucket]) -> dict[str, dict[str, Any]]:
    """Per series over all ``buckets``: probes, failures, latency min/mean/max (ms)."""
    total: dict[str, Stats] = {}
    for b in buckets:
        for key, stats in b.series.items():
            total.setdefault(key, Stats()).add(stats)
    return {key: _stats_json(s) for key, s in sorted(total.items())}


def _stats_json(s: Stats) -> dict[str, Any]:
    mean = s.mean
    return {
        "probes": s.probes,
        "failures": s.failures,
        "latency_ms": None
        if mean is None
        else {"min": round(s.low, 1), "mean": round(mean, 1), "max": round(s.high, 1)},
    }
