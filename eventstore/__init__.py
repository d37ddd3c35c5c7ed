"""eventstore: an append-only store for durable-orchestration histories."""
