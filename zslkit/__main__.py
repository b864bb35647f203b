"""``python -m zslkit`` (also what ``torchrun -m zslkit`` runs)."""

import sys

from zslkit.cli import main

sys.exit(main())
