"""kissha: KISS high availability through DNS failover between self-hosted nodes."""

__version__ = "0.1.0"
