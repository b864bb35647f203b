"""Wall time of ``zslkit train`` with 1 process vs ``torchrun`` with 2 gloo processes, on CPU.

Each setting runs ``--repeats`` times; the table reports the median of the training
loop time (the sum of the per-epoch ``wall_s`` in ``history.json``) and of the whole
command (process start, imports, data generation, training, evaluation), plus the
metrics of the last run, which must agree between the settings.

    python benchmarks/distributed_cpu.py --epochs 10 --repeats 3
    python benchmarks/distributed_cpu.py --epochs 3 --dataset-option channels=256 --dataset-option grid=14 \\
        --dataset-option images_per_class=20
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "1 process, 1 thread": ([], ["--set", "num_threads=1"]),
    "1 process, 2 threads": ([], ["--set", "num_threads=2"]),
    "2 processes (gloo), 1 thread each": (["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"],
                                          ["--set", "num_threads=1"]),
}


def run_once(launcher: list[str], extra: list[str], args, out: Path) -> tuple[float, float, dict]:
    command = [sys.executable, *launcher, "-m", "zslkit", "train", "--epochs", str(args.epochs), "--no-progress",
               "--out", str(out), *extra, *[f"--dataset-option={o}" for o in args.dataset_option]]
    if launcher:  # torchrun takes the module after its own options
        command = [sys.executable, *launcher, "-m", "zslkit", *command[command.index("train"):]]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    total = time.perf_counter() - began
    history = json.loads((out / "history.json").read_text())
    row = json.loads((out / "results.json").read_text())[0]
    return sum(h["wall_s"] for h in history), total, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    lines = ["| setting | training loop (s) | whole command (s) | T1 | H |", "|---|---:|---:|---:|---:|"]
    for name, (launcher, extra) in SETTINGS.items():
        loops, totals = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                loop, total, row = run_once(launcher, extra, args, Path(tmp))
            loops.append(loop)
            totals.append(total)
        lines.append(f"| {name} | {statistics.median(loops):.2f} | {statistics.median(totals):.2f} | "
                     f"{100 * row['T1']:.1f} | {100 * row['H']:.1f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
