"""Run zslkit commands one after the other in one process group (started by torchrun).

``torchrun --nproc-per-node 2 tests/ddp_cli.py '["extract", ...]' '["extract", ...]'``:
each argument is a JSON list of command-line arguments for ``zslkit.cli.main``; the
group is set up once, so several commands cost one start of the processes.
"""

from __future__ import annotations

import json
import sys

from zslkit import distributed
from zslkit.cli import main

if __name__ == "__main__":
    with distributed.process_group("cpu"):
        for argv in sys.argv[1:]:
            if main(json.loads(argv)) != 0:
                sys.exit(f"rank {distributed.rank()}: zslkit {argv} failed")
