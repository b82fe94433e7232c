"""User accounts: users, groups, sessions, per-user API keys, collection owners and shares, and the
audit log (store.py, SQLite in the home folder), the access rules (policy.py) and sign-in
throttling (throttle.py). Nothing here imports the web framework: the server, the CLI and the MCP
tools use the same functions."""
