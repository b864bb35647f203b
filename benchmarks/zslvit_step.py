"""One ZSLViT training step at CUB shapes: zslkit's, the authors' code's, and the step's matrix-multiply floor.

The step: forward in training mode (injection at blocks 3, 6, 9 with the labels' attributes, keep 90 % of the
patch tokens and fuse the rest there), the three losses, backward and their Adam step (the ViT and the injection
MLPs at lr 1e-5, weight decay 1e-4; the head at 5e-3, 1e-5), on a DeiT-B/16 at 224 px, batch 8, CUB's 312
attributes and 150 of 200 classes seen. Variants, each in its own process:

* ``zslkit``: :class:`zslkit.models.ZSLViT` (timm's blocks, fused attention everywhere, the CLS row alone
  where the pruning reads the attention), with weights read from the authors' model by
  :func:`zslkit.models.zslvit_official.load_official_zslvit`;
* ``theirs``: their ``zslvit.py`` (``--official``: a checkout or its bare git directory; loaded as
  ``benchmarks/zslvit_parity.py`` does), their loss of ``train_function.train``;
* ``floor``: the step's matrix multiplies alone (every forward GEMM of the step at its token counts and the
  two GEMMs of its backward, attention's batched ones included), on preallocated tensors.

Printed (stdout, one JSON object): the seconds per step of each, all three built in one process and run in turns
(``--steps`` rounds after a warm-up round: a shared machine's load falls on all alike), their medians and ratios;
the peak resident memory one step of each adds, each in its own process (Linux ``VmHWM`` reset through
``/proc/self/clear_refs`` after a warm-up step and ``malloc_trim``, minus ``VmRSS`` then; these processes run with
``MALLOC_MMAP_THRESHOLD_=131072`` so that freed tensors go back to the system at once, the timing process without
it, as a training run: with it every large tensor of every step is a fresh mapping the kernel must zero, which
slowed zslkit's and the authors' steps by a quarter and the floor's by a fifth); the first step's loss
of both, and the load average before and after. Progress goes to stderr.

    python benchmarks/zslvit_step.py --official /work/.mirror/shiming-chen+ZSLViT/repo --threads 2 --steps 3
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

LOG = logging.getLogger("zslvit_step")
HERE = Path(__file__).resolve().parent
BLOCKS, KEEP = (3, 6, 9), 0.9


def shapes(args):
    torch.manual_seed(0)
    attributes, seen = torch.rand(200, 312), torch.arange(150)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    position = torch.randint(0, len(seen), (args.batch,), generator=generator)
    return attributes, seen, images, position


def build_step(variant: str, args):
    """A function running one training step (returns its loss), for ``zslkit`` or ``theirs``."""
    sys.path.insert(0, str(HERE))
    from zslvit_parity import build_pair, load_official_module, their_loss

    from zslkit.optim import parameter_groups

    attributes, seen, images, position = shapes(args)
    official = load_official_module(args.official)
    theirs, ours = build_pair(official, blocks=BLOCKS, attributes=attributes, seen=seen, depth=12, dim=768, heads=12,
                              size=args.size, dataset="CUB", dtype=torch.float32)
    if variant == "theirs":
        ours = None  # only theirs steps here
        theirs.train()
        optimizer = torch.optim.Adam([{"params": theirs["vit"].parameters(), "lr": 1e-5, "weight_decay": 1e-4},
                                      {"params": theirs["mlp_g"].parameters(), "lr": 5e-3, "weight_decay": 1e-5}])

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = their_loss(theirs, images, position, attributes[seen])
            loss.backward()
            optimizer.step()
            return float(loss)
        return step
    theirs = None  # only ours steps here
    ours.train()
    groups = parameter_groups(ours, lr=5e-3, backbone_lr=1e-5, weight_decay=1e-4)
    for group in groups:  # their head's weight decay (one recipe weight_decay cannot say it)
        group["weight_decay"] = 1e-5 if group["role"] == "head" else 1e-4
    optimizer = torch.optim.Adam(groups)
    labels = seen[position]

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = ours.loss(ours(images, labels), labels)["total"]
        loss.backward()
        optimizer.step()
        return float(loss)
    return step


def step_gemms(batch: int, size: int, dim: int = 768, heads: int = 12, depth: int = 12, attributes: int = 312):
    """(batch count, M, K, N) of every forward GEMM of the step, at the tokens each block sees."""
    patches = (size // 16) ** 2
    gemms = [(1, batch * patches, 3 * 16 * 16, dim)]  # the patch embedding as a GEMM
    tokens = 1 + patches
    hd = dim // heads
    for index in range(depth):
        rows = batch * tokens
        gemms += [(1, rows, dim, 3 * dim), (batch * heads, tokens, hd, tokens), (batch * heads, tokens, tokens, hd),
                  (1, rows, dim, dim)]
        if index in BLOCKS:
            gemms += [(1, batch, attributes, dim), (1, batch, dim, 2 * dim), (1, batch, 2 * dim, dim),  # injection MLP
                      (1, batch, dim, attributes), (1, batch, attributes, attributes),  # query regression MLP
                      (batch * heads, 1, hd, tokens)]  # the CLS row of the attention
            tokens = 1 + math.ceil(KEEP * (tokens - 1)) + 1
        gemms += [(1, batch * tokens, dim, 4 * dim), (1, batch * tokens, 4 * dim, dim)]
    gemms += [(1, batch, dim, attributes), (1, batch, attributes, 200)]  # head and class scores
    return gemms


def build_floor(args):
    """One pass over the step's GEMMs: each forward one and its two backward ones (input and weight gradients)."""
    work = []
    for count, m, k, n in step_gemms(args.batch, args.size):
        a, b, g = torch.randn(count, m, k), torch.randn(count, k, n), torch.randn(count, m, n)
        work.append((a, b, g))

    def step():
        for index, (a, b, g) in enumerate(work):
            torch.bmm(a, b)
            if index:  # the images need no gradient
                torch.bmm(g, b.transpose(1, 2))
            torch.bmm(a.transpose(1, 2), g)
        return 0.0
    return step


def memory_worker(variant: str, args) -> dict:
    """The peak resident memory one step of ``variant`` adds (after a warm-up step), in its own process."""
    torch.set_num_threads(args.threads)
    step = build_floor(args) if variant == "floor" else build_step(variant, args)
    first = step()  # warm-up (Adam's state is made here)
    from step_bench import peak_rss_added_kib

    return {"variant": variant, "first_loss": first, "peak_added_mb": peak_rss_added_kib(step) / 1024}


def timing_worker(variants: list[str], args) -> dict:
    """Seconds per step of every variant, built in one process and run in turns (``--steps`` rounds after a warm-up
    round), so that a shared machine's load falls on all of them alike."""
    torch.set_num_threads(args.threads)
    steps = {v: build_floor(args) if v == "floor" else build_step(v, args) for v in variants}
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {v: [] for v in variants}
    for round_ in range(args.steps):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            times[variant].append(time.perf_counter() - start)
        LOG.info("round %d: %s", round_, {v: round(t[-1], 2) for v, t in times.items()})
    return {v: {"seconds": t, "median_s": statistics.median(t), "min_s": min(t)} for v, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="their checkout, or its bare git directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--variants", default="zslkit,theirs,floor")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    variants = args.variants.split(",")
    if args.worker == "timing":
        print(json.dumps(timing_worker(variants, args)))
        return 0
    if args.worker:
        print(json.dumps(memory_worker(args.worker, args)))
        return 0
    record = {"threads": args.threads, "batch": args.batch, "size": args.size, "rounds": args.steps,
              "cpu": os.cpu_count(), "load_before": os.getloadavg(), "memory": {}}
    from step_bench import RSS_ENV

    env = {**os.environ, **RSS_ENV}  # large tensors go back to the system when freed
    common = ["--official", str(args.official), "--threads", str(args.threads), "--steps", str(args.steps),
              "--batch", str(args.batch), "--size", str(args.size), "--variants", args.variants]

    def run(worker: str) -> dict:  # the timing runs in the environment a training run has (no mmap threshold)
        done = subprocess.run([sys.executable, __file__, "--worker", worker, *common], check=True, stdout=subprocess.PIPE,
                              text=True, env=os.environ if worker == "timing" else env)
        return json.loads(done.stdout.strip().splitlines()[-1])

    for variant in variants:
        LOG.info("memory of one %s step ...", variant)
        record["memory"][variant] = run(variant)
    LOG.info("timing %s in turns ...", ", ".join(variants))
    record["timing"] = run("timing")
    record["load_after"] = os.getloadavg()
    time_of = {v: t["median_s"] for v, t in record["timing"].items()}
    memory = record["memory"]
    if {"zslkit", "floor"} <= set(time_of):
        record["zslkit_over_floor"] = time_of["zslkit"] / time_of["floor"]
    if {"zslkit", "theirs"} <= set(time_of):
        record["zslkit_over_theirs"] = time_of["zslkit"] / time_of["theirs"]
        record["theirs_over_floor"] = time_of["theirs"] / time_of.get("floor", time_of["theirs"])
        record["memory_zslkit_over_theirs"] = memory["zslkit"]["peak_added_mb"] / memory["theirs"]["peak_added_mb"]
        record["first_loss_rel"] = abs(memory["zslkit"]["first_loss"] - memory["theirs"]["first_loss"]) / abs(
            memory["theirs"]["first_loss"])
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
