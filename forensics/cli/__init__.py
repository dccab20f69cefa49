"""Layer 9: the ``forensics`` command, one module per verb group; a verb parses its arguments,
builds a config and calls one library function (entry point ``forensics.cli:main``)."""
from forensics.cli.main import main

__all__ = ["main"]
