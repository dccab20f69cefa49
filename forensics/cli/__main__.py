"""``python -m forensics.cli`` runs the ``forensics`` command (as ``python -m forensics`` does)."""
import sys

from forensics.cli.main import main

sys.exit(main())
