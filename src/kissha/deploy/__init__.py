"""``kissha deploy``: install each node's rendered files over SSH (pyinfra), checked by
the servers' own syntax checks before any reload, reloading only what changed."""
