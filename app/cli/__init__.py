"""The ``salesbridge`` command line (``commands``) and its ``sync run``/``sync status``
screens (``sync_console``)."""

from app.cli.commands import cli, main

__all__ = ["cli", "main"]
