"""``zslkit bench``: the standard table (T1, U, S, H, AUSUC) for methods and models under one protocol.

    zslkit bench --dataset synthetic --methods eszsl,ale,msdn --protocol validation --seeds 3 --out runs/b

Several datasets (``--dataset cub,sun,awa2``) give side-by-side blocks; several
protocols (``--protocol validation,paper``) give a row per protocol and method
plus their difference (paper minus validation), sharing every training. With
``--out`` the run writes ``results.csv``, ``results.json``, ``table.md`` and
PNG plots there, and caches each finished cell in ``DIR/cells`` so that a
restarted run only computes what is missing; a cached cell is reused only while
the code that computed it is unchanged, and the run says (on stderr) how many
cells it reused and from where (``--recompute``: compute them all again). The
table alone goes to stdout; progress and messages to stderr.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from zslkit.cli.logs import quieter
from zslkit.cli.options import add_threads_option, require_dataset_options

log = logging.getLogger("zslkit.bench")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run methods and models under one protocol; print T1/U/S/H/AUSUC")
    p.add_argument("--dataset", default="synthetic",
                   help="registered dataset name(s), comma-separated, e.g. synthetic or cub,sun,awa2")
    p.add_argument("--methods", default=None,
                   help="comma-separated benchmark cases (registered methods/models, plugin cases); "
                        "default: the built-in baselines plus msdn and dazle when registered")
    p.add_argument("--protocol", default="validation",
                   help="validation (default: tune on the validation split, test once), paper (choose on test), "
                        "or several comma-separated, e.g. validation,paper: both rows per method, their "
                        "difference, trainings shared")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0 .. N-1); mean ± std when > 1")
    p.add_argument("--out", default=None, help="directory for results, plots and the cell cache")
    p.add_argument("--dataset-option", action="append", default=[], metavar="[DATASET.]KEY=VALUE",
                   help="option for the dataset loader (YAML value), for all datasets or one; repeatable")
    p.add_argument("--no-published", action="store_true", help="do not show published reference rows")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the cell cache in --out (default: reuse the cells cached there "
                        "with the same settings and code)")
    p.add_argument("--recompute", action="store_true",
                   help="compute every cell again and replace the cached ones in --out")
    add_threads_option(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars or per-epoch lines: one line per cell on stderr")
    p.add_argument("--list", action="store_true", help="list the available cases and protocols, then exit")
    p.set_defaults(func=run)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_dataset_options(items: list[str], datasets: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` (every dataset) or ``DATASET.KEY=VALUE`` (that one) -> dataset -> options."""
    options: dict[str, dict[str, Any]] = {d: {} for d in datasets}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--dataset-option expects [DATASET.]KEY=VALUE, got {item!r}")
        target, dot, name = key.rpartition(".")
        if dot and target not in options:
            raise ValueError(f"--dataset-option {item!r} names dataset {target!r}, not one of {', '.join(datasets)}")
        for dataset in [target] if dot else datasets:
            options[dataset][name] = yaml.safe_load(value)
    return options


def _print_list() -> int:
    from zslkit.bench import PROTOCOLS, available_cases

    print("cases:")
    for name, case in sorted(available_cases().items()):
        flags = ", default" if case.default else ""
        print(f"  {name}  ({case.kind} {case.component}, from {case.source}{flags})")
    print("protocols:")
    for name, protocol in sorted(PROTOCOLS.items()):
        print(f"  {name}: {protocol.caption}")
    return 0


def run(args) -> int:
    from zslkit.bench import write_outputs

    if args.list:
        return _print_list()
    if args.recompute and (args.no_cache or not args.out):
        raise ValueError("--recompute replaces the cells cached in --out: give --out DIR, without --no-cache "
                         "(which computes every cell and caches none)")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    datasets = _split(args.dataset)
    if not datasets:
        raise ValueError("--dataset: give at least one dataset name")
    dataset_options = parse_dataset_options(args.dataset_option, datasets)
    for name in datasets:  # before any progress bar starts
        require_dataset_options(name, dataset_options[name], "--dataset-option", f"{name}." if len(datasets) > 1 else "")
    # --no-progress: no bars, nor the trainings' per-epoch lines and the protocols' phases; one line per cell remains
    with quieter(*(("zslkit.training", "zslkit.bench.protocols") if args.no_progress else ())):
        result = _run(args, datasets, dataset_options)
    for line in result.recipe_lines():
        log.info("%s", line)
    print(result.table(with_published=not args.no_published))
    if args.out:
        paths = write_outputs(result, args.out, with_published=not args.no_published)
        log.info("wrote %d files to %s (table.md, results.csv, results.json, plots)", len(paths), args.out)
    return 0


def _run(args, datasets: list[str], dataset_options: dict[str, dict[str, Any]]):
    from zslkit.bench import run_benchmark

    return run_benchmark(
        datasets,
        _split(args.methods) if args.methods else None,
        protocol=args.protocol,
        seeds=args.seeds,
        out_dir=args.out,
        dataset_options=dataset_options,
        progress=not args.no_progress,
        use_cache=not args.no_cache,
        recompute=args.recompute,
        threads=args.threads,
    )
