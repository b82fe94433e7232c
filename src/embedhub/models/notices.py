"""One-line notices to the person at the terminal (stderr), each said once per process.

Loading a model can fall back (another model, another backend, a file without metadata); the
user must hear it once, not on every call, and a server's log must not repeat it per request.
"""

from __future__ import annotations

import sys

_said: set[str] = set()


def notice(message: str) -> None:
    """Print `embedhub: message` to stderr the first time this message is given."""
    if message not in _said:
        _said.add(message)
        print(f"embedhub: {message}", file=sys.stderr)
