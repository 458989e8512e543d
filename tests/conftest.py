"""Shared fixtures: a loopback site (real nsd, real HTTPS nodes) in a private netns."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.site import LoopbackSite
from tests.helpers import require_isolation


@pytest.fixture
def isolation() -> None:
    """Tests that start servers on lab addresses, or servers that listen on every
    interface, run only inside the private network namespace of scripts/test."""
    require_isolation()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # nsd's control socket path must fit in 107 bytes: pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="kissha-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def site(short_tmp: Path, isolation: None) -> Iterator[LoopbackSite]:
    with LoopbackSite(short_tmp / "site") as s:
        yield s
