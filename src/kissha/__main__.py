"""Entry point for ``python -m kissha``."""

from kissha.cli import main

raise SystemExit(main())
