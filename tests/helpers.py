"""Helpers shared by the test modules."""

from __future__ import annotations

import os

import pytest

from lab.site import isolated


def require_isolation() -> None:
    """Skip outside the private network namespace of scripts/test; fail if it should be one."""
    if isolated():
        return
    if os.environ.get("KISSHA_ISOLATED") == "1":
        pytest.fail("KISSHA_ISOLATED=1 but this is not a private network namespace")
    pytest.skip("needs a private network namespace: run the suite with scripts/test")
