"""`python -m local` (what `make local` runs): the whole loop on one machine."""

from __future__ import annotations

import sys

from local.cli import main

if __name__ == "__main__":
    sys.exit(main())
