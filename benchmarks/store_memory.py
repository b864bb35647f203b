"""Peak resident memory of training from an AwA2-sized feature store.

Writes a synthetic store of ``--images`` x 2048 x 14 x 14 float16 maps (AwA2: 37,322
images, 30 GB), then, in a fresh child process, streams shuffled batches of 50 from it
through an MSDN-shaped model (two attention branches, forward + backward + RMSprop step)
and reports that process's peak resident set size (``ru_maxrss``). A second pass reads
every row of the store once, to show that resident memory does not grow with the
amount of data touched. The store is deleted afterwards unless ``--keep``.

If the disk cannot hold the full size, the largest store that fits (leaving
``--reserve-gb`` free) is used and the report says so.

    python benchmarks/store_memory.py --dir /path/with/space --results benchmarks/RESULTS.md

The model is ``zslkit.create_model("msdn", ...)`` when a ``msdn`` model is registered,
otherwise the MSDN-shaped module below (same tensor shapes and operations).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

AWA2 = {"images": 37322, "classes": 50, "seen": 40, "attributes": 85, "trainval": 23527}
SECTION = "## Feature store memory"


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


# --------------------------------------------------------------------------- writing
def write_store(path: Path, images: int, channels: int, grid: int, chunk: int = 128) -> dict:
    from zslkit.datasets import create_store

    writer = create_store(path, (images, channels, grid, grid), dtype="float16", metadata={"synthetic": True})
    pool = np.abs(np.random.default_rng(0).standard_normal((chunk, channels, grid, grid), dtype=np.float32)).astype(np.float16)
    start = time.perf_counter()
    while writer.done < writer.total:
        n = min(chunk, writer.total - writer.done)
        writer.write(writer.done, np.roll(pool, writer.done % chunk, axis=0)[:n])
    writer.finish()
    return {"write_s": time.perf_counter() - start, "write_peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------------- model
def msdn_like(class_attributes, embeddings, channels, seen, unseen):
    """An MSDN-shaped model: attribute->visual and visual->attribute attention over regions."""
    import torch
    import torch.nn.functional as F
    from einops import einsum, rearrange
    from torch import nn

    class MSDNLike(nn.Module):
        def __init__(self):
            super().__init__()
            dim = embeddings.shape[1]
            self.V = nn.Parameter(F.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=1))
            self.W1 = nn.Parameter(torch.randn(dim, channels))
            self.W2, self.U2 = (nn.Parameter(torch.zeros(dim, channels)) for _ in range(2))
            self.U1 = nn.Parameter(torch.zeros(channels, dim))
            self.register_buffer("A", F.normalize(torch.as_tensor(class_attributes, dtype=torch.float32), dim=1))
            margin = torch.full((class_attributes.shape[0],), -1.0)
            margin[torch.as_tensor(unseen)] = 1.0
            self.register_buffer("margin", margin)

        def forward(self, x):  # x: (B, C, H, W)
            f = F.normalize(rearrange(x, "b c h w -> b (h w) c"), dim=-1)
            s = einsum(f, self.V @ self.W1, "b r c, i c -> b i r")
            a = einsum(f, self.V @ self.W2, "b r c, i c -> b i r").softmax(dim=-1)  # over regions
            s2 = einsum(f, self.V @ self.U1.T, "b r c, i c -> b i r")
            a2 = einsum(f, self.V @ self.U2, "b r c, i c -> b i r").softmax(dim=1)  # over attributes
            psi, psi2 = (a * s).sum(-1), (a2 * s2).sum(-1)  # (B, I)
            return psi @ self.A.T + self.margin, psi2 @ self.A.T + self.margin  # (B, K) each

        def loss(self, outputs, labels):
            y1, y2 = outputs
            ce = sum(F.cross_entropy(y - self.margin, labels) for y in (y1, y2))
            p, q = y1.softmax(-1), y2.softmax(-1)
            m = (p + q) / 2
            js = 0.5 * (F.kl_div(m.log(), p, reduction="batchmean") + F.kl_div(m.log(), q, reduction="batchmean"))
            unseen = self.margin > 0
            calibration = sum(-torch.log(y.softmax(-1)[:, unseen].sum(-1).mean()) for y in (y1, y2))
            return ce + 0.12 * calibration + 0.001 * js

    return MSDNLike()


def build_model(class_attributes, embeddings, channels, seen, unseen):
    """The registered ``msdn`` model when there is one, else the MSDN-shaped module; ``(model, loss_fn, name)``."""
    import zslkit

    if "msdn" in zslkit.list_components("model"):
        model = zslkit.create_model(
            "msdn", class_attributes=class_attributes, attribute_embeddings=embeddings,
            seen_classes=seen, unseen_classes=unseen, feature_dim=channels,
        )
        return model, lambda out, y: model.loss(out, y)["total"], "zslkit msdn"
    model = msdn_like(class_attributes, embeddings, channels, seen, unseen)
    return model, model.loss, "MSDN-shaped module (benchmarks/store_memory.py)"


# --------------------------------------------------------------------------- training child
def train(path: Path, steps: int, batch_size: int, reader: str) -> dict:
    import torch

    from zslkit.datasets import open_store

    torch.manual_seed(0)
    baseline = rss_mb()
    store = open_store(path)
    rows = store.memmap() if reader == "memmap" else store
    n, channels = store.shape[0], store.shape[1]
    rng = np.random.default_rng(0)
    k, seen_count = AWA2["classes"], AWA2["seen"]
    labels = rng.integers(0, k, size=n)
    unseen = np.arange(seen_count, k)
    trainval = np.flatnonzero(labels < seen_count)
    class_attributes = rng.uniform(0, 1, size=(k, AWA2["attributes"])).astype(np.float32)
    embeddings = rng.standard_normal((AWA2["attributes"], 300)).astype(np.float32)
    model, loss_fn, model_name = build_model(class_attributes, embeddings, channels, np.arange(seen_count), unseen)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, weight_decay=1e-4, momentum=0.9)
    order = rng.permutation(trainval)
    steps = min(steps, len(order) // batch_size) if steps > 0 else len(order) // batch_size
    trace, start, read_s = [], time.perf_counter(), 0.0
    for step in range(steps):
        idx = np.sort(order[step * batch_size : (step + 1) * batch_size])
        t0 = time.perf_counter()
        x = torch.from_numpy(np.asarray(rows[idx], dtype=np.float32))
        read_s += time.perf_counter() - t0
        loss = loss_fn(model(x), torch.as_tensor(labels[idx]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps - 1:
            trace.append(round(rss_mb()))
    train_s = time.perf_counter() - start
    train_peak = peak_rss_mb()
    start = time.perf_counter()
    for first in range(0, n, 256):  # touch every row once
        np.asarray(rows[first : first + 256]).sum()
    scan_s = time.perf_counter() - start
    return {
        "model": model_name, "reader": reader, "steps": steps, "batch_size": batch_size, "loss": float(loss),
        "baseline_rss_mb": baseline, "train_peak_rss_mb": train_peak, "rss_trace_mb": trace,
        "train_s": train_s, "read_s": read_s, "scan_s": scan_s, "peak_rss_mb": peak_rss_mb(),
        "final_rss_mb": rss_mb(), "torch_threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- driver
def fitting_images(directory: Path, wanted: int, row_bytes: int, reserve_gb: float) -> int:
    free = shutil.disk_usage(directory).free - reserve_gb * 1e9
    return int(max(0, min(wanted, free // row_bytes)))


def report(args, sizes: dict, written: dict, result: dict, command: str) -> str:
    gb = sizes["images"] * sizes["row_bytes"] / 1e9
    scaled = "" if sizes["images"] == args.images else (
        f" **Scaled down**: the disk had room for {sizes['images']:,} of the {args.images:,} images."
    )
    ok = "under" if result["peak_rss_mb"] < 4096 else "OVER"
    return "\n".join([
        SECTION,
        "",
        f"Synthetic AwA2-sized feature store: {sizes['images']:,} x {args.channels} x {args.grid} x {args.grid} float16 "
        f"= {gb:.1f} GB on disk (written in {written['write_s']:.0f} s).{scaled}",
        f"Training loop: {result['model']}, batch {result['batch_size']}, {result['steps']} RMSprop steps "
        f"(forward + backward) on shuffled trainval batches read with `{result['reader']}`, then one read pass over all rows.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| peak RSS, whole training process | **{result['peak_rss_mb']:.0f} MB** ({ok} the 4 GB budget) |",
        f"| peak RSS during the training steps | {result['train_peak_rss_mb']:.0f} MB |",
        f"| RSS after imports, before training | {result['baseline_rss_mb']:.0f} MB |",
        f"| RSS every 25 steps (MB) | {', '.join(map(str, result['rss_trace_mb']))} |",
        f"| RSS after reading every row once | {result['final_rss_mb']:.0f} MB |",
        f"| training time (of which reading) | {result['train_s']:.0f} s ({result['read_s']:.0f} s) |",
        f"| full read pass | {result['scan_s']:.0f} s ({gb / max(result['scan_s'], 1e-9):.2f} GB/s) |",
        f"| peak RSS of the process writing the store | {written['write_peak_rss_mb']:.0f} MB |",
        "",
        f"Machine: {os.cpu_count()} CPU cores, torch threads {result['torch_threads']}, no GPU. Command:",
        "",
        "```",
        command,
        "```",
        "",
    ])


def write_section(results: Path, text: str) -> None:
    old = results.read_text() if results.exists() else "# Benchmark results\n\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        old = head + tail
    results.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the store")
    parser.add_argument("--images", type=int, default=AWA2["images"])
    parser.add_argument("--channels", type=int, default=2048)
    parser.add_argument("--grid", type=int, default=14)
    parser.add_argument("--steps", type=int, default=0, help="training steps (0: one epoch over trainval)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--reader", choices=("pread", "memmap"), default="pread")
    parser.add_argument("--reserve-gb", type=float, default=8.0, help="disk space to leave free")
    parser.add_argument("--results", default=None, help="markdown file to write the section into")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train(Path(args.child), args.steps, args.batch_size, args.reader)))
        return 0

    row_bytes = args.channels * args.grid * args.grid * 2
    directory = Path(args.dir)
    images = fitting_images(directory, args.images, row_bytes, args.reserve_gb)
    if images < 1000:
        raise SystemExit(f"not enough free disk under {directory} for a meaningful store ({images} images fit)")
    if images < args.images:
        print(f"disk has room for {images} of {args.images} images: using {images}", flush=True)
    path = directory / f"zslkit-store-memory-{os.getpid()}"
    try:
        print(f"writing {images} x {args.channels} x {args.grid} x {args.grid} float16 ({images * row_bytes / 1e9:.1f} GB) to {path}", flush=True)
        written = write_store(path, images, args.channels, args.grid)
        child = [sys.executable, __file__, "--child", str(path), "--steps", str(args.steps),
                 "--batch-size", str(args.batch_size), "--reader", args.reader]
        out = subprocess.run(child, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    command = "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:])
    text = report(args, {"images": images, "row_bytes": row_bytes}, written, result, command)
    print(text)
    if args.results:
        write_section(Path(args.results), text)
    return 0 if result["peak_rss_mb"] < 4096 else 1


if __name__ == "__main__":
    sys.exit(main())
