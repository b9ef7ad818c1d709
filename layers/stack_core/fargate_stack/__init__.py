"""Buildkite Fargate Stack: the shared layer's package (client, domain, use cases, adapters)."""

__version__ = "0.1.0"
