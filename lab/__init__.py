"""The lab, kept out of kissha's wheel: real components for tests, the demo and the benches."""
