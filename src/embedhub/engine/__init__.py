"""Scheduling of model work in a server process: the request-merging queue per model, the
embedding cache, the served models, and the adapter that sends knowledge-base work through them."""
