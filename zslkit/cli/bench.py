"""``zslkit bench``: fit methods on a dataset and print the standard table."""

from __future__ import annotations

import time

import numpy as np

import zslkit
from zslkit.bench import evaluate_scores, format_markdown, write_results


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run methods on a dataset and print T1/U/S/H/AUSUC")
    p.add_argument("--dataset", default="synthetic", help="registered dataset name")
    p.add_argument("--methods", default="eszsl", help="comma-separated registered method names")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="directory for results.csv and results.json")
    p.set_defaults(func=run)


def run(args) -> int:
    dataset = zslkit.load_dataset(args.dataset, seed=args.seed)
    rows = []
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        start = time.perf_counter()
        method = zslkit.create("method", name)
        X = dataset.pooled_features()
        mean, std = X[dataset.splits["trainval"]].mean(0), X[dataset.splits["trainval"]].std(0) + 1e-8
        X = (X - mean) / std
        tv = dataset.splits["trainval"]
        method.fit(X[tv], dataset.labels[tv], dataset.class_attributes, dataset.seen_classes)
        metrics = evaluate_scores(
            dataset,
            method.decision_function(X[dataset.splits["test_seen"]]),
            method.decision_function(X[dataset.splits["test_unseen"]]),
        )
        rows.append({"method": name, **metrics, "seed": args.seed, "wall_s": time.perf_counter() - start,
                     "params": method.get_params(), "dataset": dataset.name})
    print(format_markdown(rows, title=f"{dataset.name} (seed {args.seed})"))
    if args.out:
        paths = write_results(rows, args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if np.isfinite([r["H"] for r in rows]).all() else 1
