"""Real components for tests and the demo: a test CA, HTTPS node servers, nsd instances."""
