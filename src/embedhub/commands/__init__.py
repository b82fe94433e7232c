"""The command line's rooms: one module per command group, above every domain package.

Nothing below imports from here (tests/commands/test_layers.py checks it); `embedhub.cli` assembles the
groups into the `embedhub` command."""
