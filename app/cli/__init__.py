"""Commands of `python -m app`, one module each; app/__main__.py registers them.

A new command is a module here with a `COMMAND = Command(...)` (see app.cli.common) and one
entry in `COMMANDS` in app/__main__.py.
"""
