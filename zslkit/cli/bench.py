"""``zslkit bench``: the standard table (T1, U, S, H, AUSUC) for methods and models under one protocol.

    zslkit bench --dataset synthetic --model eszsl,ale,msdn --protocol validation --seed 0,1,2 --out runs/b

Several datasets (``--dataset cub,sun,awa2``) give side-by-side blocks; several
protocols (``--protocol validation,paper``) give a row per protocol and method
plus their difference (paper minus validation), sharing every training. With
``--out`` the run writes ``results.csv``, ``results.json``, ``table.md`` and
PNG plots there, and caches each finished cell in ``DIR/cells`` so that a
restarted run only computes what is missing; a cached cell is reused only while
the code that computed it is unchanged, and the run says (on stderr) how many
cells it reused and from where (``--recompute``: compute them all again). The
table alone goes to stdout; progress and messages to stderr. When the backbone's
pretraining is known (``--pretraining in21k``, or the feature store's metadata), each
row adds ``U_leak_free``/``H_leak_free`` on the unseen classes outside its label set
and ``H_leak_gap`` (H minus the leak-free H; see ``zslkit leakage``).
"""

from __future__ import annotations

import logging
from typing import Any

from zslkit.cli import CLIError
from zslkit.cli.logs import quieter
from zslkit.cli.options import (
    RenamedStore,
    add_dataset_options,
    add_import_option,
    add_logger_option,
    add_threads_option,
    check_out_dir,
    logger_names,
    note_other_name,
    parse_dataset_options,
    require_dataset_options,
)

log = logging.getLogger("zslkit.bench")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run methods and models under one protocol; print T1/U/S/H/AUSUC")
    p.add_argument("--dataset", default="synthetic",
                   help="registered dataset name(s), comma-separated, e.g. synthetic or cub,sun,awa2 (default: synthetic)")
    p.add_argument("--model", "--methods", dest="model", action=RenamedStore, default=None, metavar="NAMES",
                   help="comma-separated benchmark cases: registered methods and models, plugin cases (zslkit bench "
                        "--list) (default: the built-in baselines plus msdn and dazle)")
    p.add_argument("--protocol", default="validation",
                   help="validation (default: tune on the validation split, test once), paper (choose on test), "
                        "or several comma-separated, e.g. validation,paper: both rows per method, their "
                        "difference, trainings shared")
    p.add_argument("--seed", default=None, metavar="SEEDS",
                   help="comma-separated seeds, e.g. 0,1,2: mean ± std over them when several (default: 0)")
    p.add_argument("--seeds", dest="seed_count", type=int, default=None, metavar="N",
                   help="N seeds 0 .. N-1, the same as --seed 0,...,N-1 (default: --seed's)")
    p.add_argument("--out", default=None, help="directory for results, plots and the cell cache (default: none, "
                   "nothing is written or reused)")
    add_dataset_options(p, several=True)
    add_import_option(p)
    p.add_argument("--backbone", default=None,
                   help="train the models end to end through this timm backbone on an image dataset "
                        "(synthetic_images), e.g. resnet10t; needs --weights or --random-init (default: none: models read feature maps)")
    p.add_argument("--backbone-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for timm.create_model (YAML value), e.g. output_stride=8 or channels=[16,32,64,64]; repeatable (default: none)")
    p.add_argument("--weights", default=None,
                   help="with --backbone: local weights file (.pth state dict or .safetensors) (default: none)")
    p.add_argument("--random-init", action="store_true", help="with --backbone: random weights, seeded by each cell's seed")
    p.add_argument("--clip", default=None, metavar="MODEL",
                   help="the CLIP model of the CLIP rows (clip_names, clip_attributes, clip_linear): an open_clip model "
                        "name, e.g. ViT-B-16-quickgelu, with --clip-weights; or zslkit-tiny with --clip-random-init "
                        "(a plumbing check) (default: none)")
    p.add_argument("--clip-weights", default=None, metavar="PATH",
                   help="with --clip: the model's local open_clip checkpoint; nothing is downloaded (default: none)")
    p.add_argument("--clip-random-init", action="store_true", help="with --clip: random weights (a plumbing check)")
    p.add_argument("--pretraining", default=None, metavar="TAG",
                   help="what the backbone of the features was pretrained on: in1k, in12k, in21k, in22k, or a timm weight "
                        "tag such as augreg_in21k_ft_in1k; adds U/H on the unseen classes outside that label set "
                        "(zslkit leakage) (default: what the feature store's metadata or --backbone say, else none)")
    p.add_argument("--no-published", action="store_true", help="do not show published reference rows")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the cell cache in --out (default: reuse the cells cached there "
                        "with the same settings and code)")
    p.add_argument("--recompute", action="store_true",
                   help="compute every cell again and replace the cached ones in --out")
    add_threads_option(p)
    add_logger_option(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars or per-epoch lines: one line per cell on stderr")
    p.add_argument("--list", action="store_true", help="list the available cases and protocols, then exit")
    p.set_defaults(func=run)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _names(text: str | None, flag: str, what: str) -> list[str] | None:
    """The comma-separated names of ``flag`` (``None`` when not given); refuses a value naming none."""
    if text is None:
        return None
    names = _split(text)
    if not names:
        raise CLIError(f"{flag} {text!r} names no {what}; give comma-separated names (zslkit bench --list shows "
                       f"them), or leave {flag} out for the defaults")
    return names


def _seeds(text: str | None, count: int | None) -> list[int]:
    """The seeds of ``--seed`` (comma-separated) or of the older ``--seeds N`` (``0 .. N-1``); refuses both."""
    if count is not None:
        if text is not None:
            raise CLIError(f"--seed {text} and --seeds {count} both give the seeds; give one of them")
        if count < 1:
            raise CLIError(f"--seeds must be at least 1, got {count}")
        seeds = list(range(count))
        note_other_name("zslkit bench", "--seeds", "--seed", f" (--seeds {count} is --seed {','.join(map(str, seeds))})")
        return seeds
    if text is None:
        return [0]
    try:
        seeds = [int(part) for part in _split(text)]
    except ValueError:
        raise CLIError(f"--seed {text!r}: expected comma-separated whole numbers, e.g. --seed 0,1,2") from None
    if not seeds:
        raise CLIError(f"--seed {text!r} names no seed; give comma-separated whole numbers, e.g. --seed 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise CLIError(f"--seed {text!r} repeats a seed; give each seed once")
    return seeds


def backbone_options(args) -> dict[str, Any] | None:
    """The ``timm`` backbone's options of ``--backbone`` and its flags, or ``None`` without ``--backbone``."""
    from zslkit.cli.options import parse_assignments

    given = args.backbone_option or args.weights is not None or args.random_init
    if args.backbone is None:
        if given:
            raise CLIError("--backbone-option, --weights and --random-init need --backbone NAME (a timm model)")
        return None
    if (args.weights is None) == (not args.random_init):
        raise CLIError("--backbone needs exactly one of --weights PATH (a local file; nothing is downloaded) or --random-init")
    options = parse_assignments(args.backbone_option, "--backbone-option")
    for key in ("model_name", "weights", "random_init"):
        if key in options:
            raise CLIError(f"--backbone-option {key}=...: give it as --{key.replace('model_name', 'backbone').replace('_', '-')}")
    fixed = {"weights": args.weights} if args.weights is not None else {"random_init": True}
    return {"model_name": args.backbone, **fixed, **options}


def clip_options(args) -> dict[str, Any] | None:
    """The CLIP model of ``--clip`` and its flags (:func:`zslkit.clip.load_clip`'s arguments), or ``None``."""
    if args.clip is None:
        if args.clip_weights is not None or args.clip_random_init:
            raise CLIError("--clip-weights and --clip-random-init need --clip MODEL (an open_clip model name)")
        return None
    if (args.clip_weights is None) == (not args.clip_random_init):
        raise CLIError("--clip needs exactly one of --clip-weights PATH (a local file; nothing is downloaded) "
                       "or --clip-random-init")
    return {"model": args.clip, "weights": args.clip_weights} if args.clip_weights else {
        "model": args.clip, "random_init": True}


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
    datasets = _names(args.dataset, "--dataset", "dataset")
    cases, seeds = _names(args.model, "--model", "benchmark case"), _seeds(args.seed, args.seed_count)
    dataset_options = parse_dataset_options(args.dataset_option, datasets)
    backbone, clip = backbone_options(args), clip_options(args)
    if args.pretraining is not None:
        from zslkit.leakage import pretraining_of

        try:
            pretraining_of(args.pretraining)
        except ValueError as exc:
            raise CLIError(f"--pretraining: {exc}") from None
    for name in datasets:  # before any progress bar starts
        require_dataset_options(name, dataset_options[name], "--dataset-option", f"{name}." if len(datasets) > 1 else "")
    check_out_dir(args.out)
    loggers = logger_names(args.logger, None, args.out)
    # --no-progress: no bars, nor the trainings' per-epoch lines and the protocols' phases; one line per cell remains
    with quieter(*(("zslkit.training", "zslkit.bench.protocols") if args.no_progress else ())):
        result = _run(args, datasets, cases, seeds, dataset_options, (backbone, clip))
    for line in result.recipe_lines():
        log.info("%s", line)
    print(result.table(with_published=not args.no_published))
    if args.out:
        paths = write_outputs(result, args.out, with_published=not args.no_published)
        log.info("wrote %d files to %s (table.md, results.csv, results.json, plots)", len(paths), args.out)
        if loggers:
            from zslkit.bench.tracking import log_benchmark

            log_benchmark(result, loggers, args.out, paths, with_published=not args.no_published)
            log.info("logged %d runs to %s", len(result.cells) + 1, ", ".join(loggers))
    return 0


def _run(args, datasets: list[str], cases, seeds, dataset_options: dict[str, dict[str, Any]],
         ends: tuple[dict[str, Any] | None, dict[str, Any] | None]):
    from zslkit.bench import run_benchmark

    backbone, clip = ends
    return run_benchmark(
        datasets,
        cases,
        protocol=args.protocol,
        seeds=seeds,
        out_dir=args.out,
        dataset_options=dataset_options,
        progress=not args.no_progress,
        use_cache=not args.no_cache,
        backbone=backbone,
        recompute=args.recompute,
        threads=args.threads,
        clip=clip,
        pretraining=args.pretraining,
    )
