"""The network lab fixture: two nodes and a client in network namespaces, torn down always."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.netlab import Lab


@pytest.fixture
def lab(isolation: None) -> Iterator[Lab]:
    Lab.cleanup_stale()
    with Lab() as built:
        yield built
    # Teardown must leave nothing behind, whatever the test did.
    assert not built.teardown_problems, built.teardown_problems
    assert not built.leftovers(), built.leftovers()
