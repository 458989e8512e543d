"""The pure core: the model, decisions, zone-file rewriting and events; no I/O."""
