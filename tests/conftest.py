"""Shared fixtures: a loopback site (real nsd, real HTTPS nodes) in a private netns."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kissha.lab.site import LoopbackSite, isolated


def _require_isolation() -> None:
    if isolated():
        return
    if os.environ.get("KISSHA_ISOLATED") == "1":
        pytest.fail("KISSHA_ISOLATED=1 but this is not a private network namespace")
    pytest.skip("needs a private network namespace: run the suite with scripts/test")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # nsd's control socket path must fit in 107 bytes: pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="kissha-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def site(short_tmp: Path) -> Iterator[LoopbackSite]:
    _require_isolation()
    with LoopbackSite(short_tmp / "site") as s:
        yield s
