"""`python -m fnhost ...`: the same command as `fnhost` (see `fnhost.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
