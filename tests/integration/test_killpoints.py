"""SIGKILL at exact system calls of a failover run, then a recovery run: zone files are
the expected new ones (sha256, owner, mode), nothing is left behind, nsd serves them.

A bounded sample of lab.killpoints (bench/run-killpoints kills at every point):
each rename and link of a run, the reload's spawn, a sample of unlinks and fsyncs, and
the same points with the recovery run killed at its reload too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import killpoints
from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

POINTS = [("rename", k) for k in range(1, 7)] + [("link", k) for k in (1, 2, 3)]
POINTS += [("unlink", 1), ("unlink", 4), ("fsync", 3), ("fsync", 7), ("syncfs", 1), ("vfork", 1)]


@pytest.fixture
def small_site(short_tmp: Path, isolation: None) -> Iterator[LoopbackSite]:
    with LoopbackSite(short_tmp / "site", zones=("z0.example", "z1.example", "z2.example")) as s:
        yield s


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (scripts/setup)")
def test_every_sampled_kill_point_recovers(small_site: LoopbackSite) -> None:
    kp = killpoints.KillPoints(small_site)
    outcomes = kp.run(POINTS)
    outcomes += kp.run(POINTS[::3], then=("vfork", 1))
    assert all(o.killed for o in outcomes), [o for o in outcomes if not o.killed]
    assert [o for o in outcomes if o.problems] == []
