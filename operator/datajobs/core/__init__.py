"""The lifecycle core: pure decisions, builders and the queue; no I/O, no kopf, no client."""
