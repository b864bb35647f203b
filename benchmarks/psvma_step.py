"""One PSVMA training step at CUB shapes: zslkit's ``psvma`` beside the authors' code and beside the step's floor.

The step: forward in training mode, the three losses, backward and one SGD step (lr 1e-3, momentum 0.9,
weight decay 1e-4), a ViT-B/16 at 224 px, batch 8, 312 attributes, 150 seen + 50 unseen classes, 28 groups.
Both models hold the same random-init weights (the authors' model built with its own init,
converted by ``load_official_psvma``: ``benchmarks/psvma_parity.py``); their losses are checked
equal first. Then, in one process and interleaved, ``--repeats`` timed steps of each after one
warm-up step, and the **floor**: the matrix multiplies of zslkit's step alone (every ``mm``,
``addmm``, ``bmm``, ``baddbmm`` and the patch convolution recorded in one step with a
``TorchDispatchMode``, timm's fused attention counted as its two products forward and four
backward), replayed on random tensors of the same shapes. Memory: each code's second step in a
fresh process, the peak resident set size it adds (``step_bench.peak_rss_added_kib``: Linux's
``VmHWM`` after the step above ``VmRSS`` before it, with ``MALLOC_MMAP_THRESHOLD_=131072``; "RSS added"); ``--memory-only`` also gives the tensors' peak above the start from
the profiler's memory timeline (what the allocator holds, not what glibc keeps).

    python benchmarks/psvma_step.py --official /tmp/PSVMA --threads 2 [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
from psvma_parity import build_pair, rel, their_loss  # noqa: E402  (the parity script's builders)

CUB = {"width": 768, "depth": 12, "heads": 12, "attributes": 312, "seen": 150, "unseen": 50, "groups": 28}
BATCH = 8
aten = torch.ops.aten
GEMMS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default, aten.convolution.default,
         aten.convolution_backward.default}
ATTENTION = {"_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward"}


class RecordGemms(TorchDispatchMode):
    """Records ``(op, shapes of its tensor arguments, its other arguments)`` of every matrix multiply run under it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in GEMMS or func._schema.name.split("::")[-1] in ATTENTION:
            self.calls.append((func, [a.shape if torch.is_tensor(a) else a for a in args]))
        return func(*args, **(kwargs or {}))


def replay(calls) -> list:
    """Closures that run each recorded multiply on random tensors of its shapes (attention as its plain products);
    one tensor per shape, shared by the calls (the 12 blocks repeat their shapes), so the floor holds little memory."""
    pool: dict[tuple[int, ...], torch.Tensor] = {}

    def tensor(*shape) -> torch.Tensor:
        return pool.setdefault(tuple(shape), torch.randn(*shape))

    runs = []
    for func, shapes in calls:
        name = func._schema.name.split("::")[-1]
        if name in ATTENTION:
            b, h, t, d = shapes[0] if name.endswith("cpu") else shapes[1]
            q, k, w = tensor(b * h, t, d), tensor(b * h, d, t), tensor(b * h, t, t)
            count = 1 if name.endswith("cpu") else 2  # forward: QK^T and AV; backward: four products
            runs += [lambda q=q, k=k: torch.bmm(q, k), lambda w=w, q=q: torch.bmm(w, q)] * count
            continue
        tensors = [tensor(*s) if isinstance(s, torch.Size) else s for s in shapes]
        runs.append(lambda func=func, tensors=tensors: func(*tensors))
    return runs


def step_fns(theirs, ours, att, seen):
    options = {"lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4}
    opt_theirs = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], **options)
    opt_ours = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], **options)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 224, 224, generator=generator)
    labels = torch.randint(0, seen, (BATCH,), generator=generator)

    def step_theirs():
        opt_theirs.zero_grad()
        their_loss(theirs, images, labels, att, seen)[0].backward()
        opt_theirs.step()

    def step_ours():
        opt_ours.zero_grad()
        ours.loss(ours(images, labels), labels)["total"].backward()
        opt_ours.step()

    return {"authors": step_theirs, "zslkit": step_ours}, images, labels


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memory_child(args) -> None:
    torch.set_num_threads(args.threads)
    theirs, ours, att = build_pair(args.official, **CUB)
    fns, _, _ = step_fns(theirs, ours, att, CUB["seen"])
    fns[args.memory]()  # the first step allocates the gradients and the momentum buffers
    from step_bench import (  # RSS; the profiler's timeline, as for MSDN's step
        peak_rss_added_kib,
        peak_step_memory_mib,
    )

    rss = peak_rss_added_kib(fns[args.memory])

    print(json.dumps({"rss_added_kib": rss, "tensor_peak_mib": peak_step_memory_mib("cpu", fns[args.memory])}))


def memory_run(args, who: str) -> dict:
    """The memory figures of ``who``'s second step, measured in a fresh process."""
    from step_bench import RSS_ENV

    out = subprocess.run([sys.executable, __file__, "--official", str(args.official), "--threads", str(args.threads),
                          "--memory", who], capture_output=True, text=True, check=True, env={**os.environ, **RSS_ENV}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of ManLiuCoder/PSVMA")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", choices=("authors", "zslkit"), help=argparse.SUPPRESS)  # the child of a memory run
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory runs: RSS added and the profiler's tensor peak of each code's second step")
    args = parser.parse_args(argv)
    if args.memory:
        return memory_child(args)
    if args.memory_only:
        for who in ("authors", "zslkit"):
            print(who, memory_run(args, who))
        return None
    torch.set_num_threads(args.threads)
    theirs, ours, att = build_pair(args.official, **CUB)
    fns, images, labels = step_fns(theirs, ours, att, CUB["seen"])
    with torch.no_grad():
        theirs.train(), ours.train()
        check = rel(ours.loss(ours(images, labels), labels)["total"], their_loss(theirs, images, labels, att, CUB["seen"])[0])
    print(f"total loss, max relative error before timing: {check:.1e}", file=sys.stderr)
    recorder = RecordGemms()
    with recorder:
        fns["zslkit"]()  # also the warm-up of zslkit's step
    floor_runs = replay(recorder.calls)
    fns["authors"]()  # warm-up
    times = {"authors": [], "zslkit": [], "floor": []}
    load = os.getloadavg()
    for _ in range(args.repeats):
        times["authors"].append(timed(fns["authors"]))
        times["zslkit"].append(timed(fns["zslkit"]))
        times["floor"].append(timed(lambda: [run() for run in floor_runs]))
    load = (load, os.getloadavg())
    calls = len(recorder.calls)
    floor_runs.clear()  # the memory runs below each build their own models, in a fresh process
    del fns, theirs, ours, recorder
    memory = {who: memory_run(args, who)["rss_added_kib"] / 1024 for who in ("authors", "zslkit")}
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"PSVMA training step, ViT-B/16 224 px, batch {BATCH}, CUB shapes, {args.threads} threads, "
          f"load average {load[0][0]:.1f} -> {load[1][0]:.1f}; {calls} multiplies in the floor")
    for who in ("floor", "zslkit", "authors"):
        extra = f", peak RSS added {memory[who]:.0f} MiB" if who in memory else ""
        print(f"  {who:8s} median {median[who]:.2f} s over {args.repeats} ({', '.join(f'{t:.2f}' for t in times[who])})"
              f"{extra}")
    print(f"  zslkit / floor {median['zslkit'] / median['floor']:.2f}x; zslkit / authors "
          f"{median['zslkit'] / median['authors']:.2f}x; RSS added zslkit / authors {memory['zslkit'] / memory['authors']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
