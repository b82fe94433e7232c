"""Scheduling of encoder work: the request-merging queue, the cache and the served models."""
