"""Benchmarks (`make bench`): figures from runs anyone can repeat, never from timed tests."""
