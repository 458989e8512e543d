"""Watching the cluster: status (split brain), the status page, its history, metrics."""
