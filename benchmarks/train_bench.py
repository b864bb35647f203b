"""Whole-training time at CUB size: 30 epochs of MSDN from a feature store, evaluated every epoch.

Issue #5's end-to-end target: a whole CUB training (30 epochs from a feature store on the
GPU, with per-epoch evaluation) in under 15 seconds on an H100. This script:

1. writes a CUB-sized float16 feature store (11,788 x 2048 x 14 x 14, 9.5 GB; random
   non-negative features, so the metrics are not meaningful, only the time) unless
   ``--store`` names an existing one of that shape (e.g. real extracted features);
2. builds a dataset with CUB's split sizes (7,057 trainval, 1,764 test-seen, 2,967
   test-unseen images; 150 seen / 50 unseen classes; 312 attributes, 300-d vectors);
3. holds every image's features on the device (``--resident on``, the default: read once,
   timed separately, shared by all variants);
4. for every variant, trains MSDN with the packaged ``cub`` recipe for ``--epochs``
   epochs, evaluates T1/U/S/H/AUSUC on the test splits after every epoch, and reports
   the training loop, the evaluations and their sum.

Variants: ``fp32``, ``tf32`` (CUDA), ``bf16``; a ``+graphs`` suffix adds
``compile: reduce-overhead`` (``torch.compile`` with CUDA graphs), ``+compile`` adds
``compile: default``.

    python benchmarks/train_bench.py --device cuda --dir /tmp                 # the issue's run
    python benchmarks/train_bench.py --device cuda --variants fp32,tf32,bf16,tf32+graphs
    python benchmarks/train_bench.py --device cpu --epochs 1 --images 2000    # a CPU run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from store_memory import write_store

import zslkit
from zslkit.datasets import ZSLDataset, make_resident, open_store
from zslkit.training import evaluate, load_config, train

CUB = {"images": 11788, "classes": 200, "unseen": 50, "attributes": 312, "embedding": 300,
       "trainval": 7057, "test_seen": 1764, "channels": 2048, "grid": 14}


def cub_sized_dataset(store, images: int, seed: int = 0) -> ZSLDataset:
    """A dataset with CUB's class counts and split proportions over the first ``images`` rows of ``store``."""
    rng = np.random.default_rng(seed)
    scale = images / CUB["images"]
    n_trainval, n_test_seen = round(CUB["trainval"] * scale), round(CUB["test_seen"] * scale)
    n_unseen, n_seen_classes = images - n_trainval - n_test_seen, CUB["classes"] - CUB["unseen"]
    if n_trainval < n_seen_classes or n_unseen < CUB["unseen"]:
        raise SystemExit(f"--images {images} is too few for every class to have images")
    # every seen class in trainval and test_seen, every unseen class in test_unseen; images in random order
    role_labels = np.concatenate([np.arange(n_trainval) % n_seen_classes, np.arange(n_test_seen) % n_seen_classes,
                                  n_seen_classes + np.arange(n_unseen) % CUB["unseen"]])
    position = rng.permutation(images)
    labels = np.empty(images, dtype=np.int64)
    labels[position] = role_labels
    cuts = np.cumsum([0, n_trainval, n_test_seen, n_unseen])
    splits = {name: np.sort(position[cuts[k] : cuts[k + 1]]) for k, name in enumerate(("trainval", "test_seen", "test_unseen"))}
    attributes = rng.random((CUB["classes"], CUB["attributes"]), dtype=np.float32) * 100
    features = store if images == store.shape[0] else _FirstRows(store, images)
    return ZSLDataset(
        name="cub-sized", labels=labels, class_attributes=attributes, splits=splits, features=features,
        attribute_embeddings=rng.standard_normal((CUB["attributes"], CUB["embedding"]), dtype=np.float32),
        class_names=[f"class_{k}" for k in range(CUB["classes"])],
        attribute_names=[f"attribute_{i}" for i in range(CUB["attributes"])],
    )


class _FirstRows:
    """The first ``n`` rows of an array-like (a smaller run from the same store)."""

    def __init__(self, source, n: int):
        self.source, self.shape, self.dtype = source, (n, *source.shape[1:]), source.dtype
        self.array_path = getattr(source, "array_path", "features")

    def __getitem__(self, index):
        return self.source[index]


def run_variant(dataset, variant: str, device: str, epochs: int) -> dict:
    precision, _, extra = variant.partition("+")
    compile_mode = {"": "off", "graphs": "reduce-overhead", "compile": "default"}[extra]
    config = load_config("msdn/cub", epochs=epochs, device=device, precision=precision, compile=compile_mode, resident="off")
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    record: dict = {"variant": variant, "epochs": epochs, "device": device, "compile": compile_mode}
    evaluations = []

    def on_epoch(epoch, model):
        synchronize()
        start = time.perf_counter()
        metrics = evaluate(model, dataset, batch_size=config.eval_batch_size)
        evaluations.append(time.perf_counter() - start)
        return {f"test_{k}": v for k, v in metrics.items()}

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(dataset, "msdn", config, on_epoch=on_epoch, progress=False)
    synchronize()
    record["total_s"] = time.perf_counter() - start
    record["eval_s"] = sum(evaluations)
    record["train_s"] = record["total_s"] - record["eval_s"]
    steps = sum(-(-len(dataset.splits["trainval"]) // config.batch_size) for _ in range(epochs))
    record["ms_per_step"] = 1000 * record["train_s"] / steps
    record["epoch_train_s"] = [h["wall_s"] for h in result.history]  # the first includes compiling, if any
    record["epoch_eval_s"] = evaluations
    record["last_epoch"] = {k: v for k, v in result.history[-1].items() if k.startswith("test_")}
    if device.startswith("cuda"):
        record["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return record


def environment(device: str) -> dict:
    info = {"torch": torch.__version__, "zslkit": zslkit.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "load_average": os.getloadavg()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--images", type=int, default=CUB["images"], help="images in the run (CUB: 11788)")
    parser.add_argument("--variants", default=None, help="comma-separated; default fp32,tf32,bf16,tf32+graphs on CUDA, fp32 on CPU")
    parser.add_argument("--resident", choices=("on", "off"), default="on",
                        help="on (default): hold every image's features on the device, read once; off: read the store every step")
    parser.add_argument("--channels", type=int, default=CUB["channels"], help="feature channels of a generated store")
    parser.add_argument("--grid", type=int, default=CUB["grid"], help="regions per side of a generated store")
    parser.add_argument("--store", type=Path, help="an existing (N, 2048, 14, 14) store; default: write one in --dir")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the generated store goes")
    parser.add_argument("--keep", action="store_true", help="keep the generated store")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("bench-out/train_bench.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    variants = (args.variants or ("fp32,tf32,bf16,tf32+graphs" if cuda else "fp32")).split(",")
    written = None
    if args.store is None:
        written = args.dir / "zslkit-cub-sized-store"
        began = time.perf_counter()
        if not (written / "COMPLETE").exists():
            shutil.rmtree(written, ignore_errors=True)
            write_store(written, args.images, args.channels, args.grid)
        print(f"store {written}: {args.images} x {args.channels} x {args.grid} x {args.grid} float16 ({time.perf_counter() - began:.0f} s)", flush=True)
    store = open_store(args.store or written)
    images = min(args.images, store.shape[0])
    dataset = cub_sized_dataset(store, images)
    print(f"{dataset.name}: {images} images, trainval {len(dataset.splits['trainval'])}, "
          f"test_seen {len(dataset.splits['test_seen'])}, test_unseen {len(dataset.splits['test_unseen'])}", flush=True)
    records, load = [], {"resident": None, "load_s": 0.0}
    try:
        if args.resident == "on":  # read once, shared by every variant
            began = time.perf_counter()
            dataset = make_resident(dataset, args.device, max_fraction=0.9)
            load = {"resident": repr(dataset.features), "load_s": time.perf_counter() - began}
            print(f"held {load['resident']} in {load['load_s']:.1f} s", flush=True)
        for variant in variants:
            record = run_variant(dataset, variant, args.device, args.epochs)
            records.append(record)
            print(json.dumps(record), flush=True)
    finally:
        if written is not None and not args.keep:
            shutil.rmtree(written, ignore_errors=True)
    print(f"\nfeatures: {load['resident'] or 'read from the store'} (load {load['load_s']:.1f} s)")
    print("| variant | train s | eval s | train + eval s | ms/step | peak MiB |\n|---|---:|---:|---:|---:|---:|")
    for r in records:
        print(f"| {r['variant']} | {r['train_s']:.1f} | {r['eval_s']:.1f} | {r['total_s']:.1f} | "
              f"{r['ms_per_step']:.1f} | {r.get('peak_mib', float('nan')):.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": shlex.join([Path(sys.executable).name, *sys.argv]), "images": images,
                                    **load, "environment": environment(args.device), "records": records}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
