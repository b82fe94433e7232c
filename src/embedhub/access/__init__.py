"""Reaching the knowledge base from a tool beside it (the CLI, the MCP tools): through the running
`embedhub serve` for this EMBEDHUB_HOME, found by discovery.py and called by client.py (httpx only,
no web framework), or in this process."""
