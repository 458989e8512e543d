"""The network lab fixture: two nodes and a client in network namespaces, torn down always."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kissha.lab.netlab import Lab
from kissha.lab.site import isolated


@pytest.fixture
def isolation() -> None:
    """Skip outside scripts/isolated, as tests/conftest.py does; the lab also needs root."""
    if isolated():
        return
    if os.environ.get("KISSHA_ISOLATED") == "1":
        pytest.fail("KISSHA_ISOLATED=1 but this is not a private network namespace")
    pytest.skip("needs a private network namespace: run the suite with scripts/test")


@pytest.fixture
def lab(isolation: None) -> Iterator[Lab]:
    Lab.cleanup_stale()
    with Lab() as built:
        yield built
    # Teardown must leave nothing behind, whatever the test did.
    assert not built.teardown_problems, built.teardown_problems
    assert not built.leftovers(), built.leftovers()
