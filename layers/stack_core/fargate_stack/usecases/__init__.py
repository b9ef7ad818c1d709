"""Use cases: orchestrate ports and domain decisions; log and count every decision."""
