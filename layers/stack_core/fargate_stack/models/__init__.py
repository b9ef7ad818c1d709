"""pydantic models of what crosses the stack's edges: events, messages, launch specs."""
