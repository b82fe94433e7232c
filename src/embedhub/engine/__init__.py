"""Scheduling of encoder work: token-budget batching now, the request-merging queue later."""
