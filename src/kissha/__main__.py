"""Entry point for ``python -m kissha``."""

from kissha.cli import run

run()
