"""`python -m stylelab ...`: see stylelab.cli."""

import sys

from stylelab.cli import main

if __name__ == "__main__":
    sys.exit(main())
