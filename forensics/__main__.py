import sys

from forensics.cli.main import main

sys.exit(main())
