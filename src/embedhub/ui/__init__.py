"""The web UI: static files that talk to the HTTP API only."""
