"""How often a 2-process gloo job aborts on exit, leaving with and without ``teardown(synchronize=True)``.

Runs ``tests/training/ddp_exit_worker.py`` under ``torchrun --standalone --nproc-per-node=2``
``--runs`` times per exit mode, alternating the modes, while ``--busy`` processes spin to
load the cores (the aborts need a busy machine). A run counts as an abort when torchrun
exits non-zero and its output has "terminate called without an active exception".

    python benchmarks/ddp_exit.py --runs 30 --busy 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "training" / "ddp_exit_worker.py"  # zslkit itself: the installed (editable) package
MODES = ("plain", "synchronized")
ABORT = "terminate called without an active exception"


def spin() -> None:
    while True:
        pass


def run_once(mode: str) -> str:
    """"ok", "abort" or "failed" (a non-zero exit for another reason) for one job."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(WORKER),
                   out, mode]
        result = subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        return "ok"
    return "abort" if ABORT in result.stdout + result.stderr else "failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="jobs per exit mode")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes loading the cores meanwhile")
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    counts = {mode: {"ok": 0, "abort": 0, "failed": 0} for mode in MODES}
    try:
        for _ in range(args.runs):
            for mode in MODES:
                counts[mode][run_once(mode)] += 1
    finally:
        for process in spinners:
            process.terminate()
    print("| exit | runs | aborted | other failures |\n|---|---:|---:|---:|")
    for mode, count in counts.items():
        print(f"| {mode} | {args.runs} | {count['abort']} | {count['failed']} |")


if __name__ == "__main__":
    main()
