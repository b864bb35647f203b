"""``zslkit train``: train a model on a dataset, checkpoint every epoch, print the metric table.

Under ``torchrun --nproc-per-node N -m zslkit train ...`` the processes join one group
and train data-parallel (see ``docs/distributed.md``); rank 0 prints and writes files.
With ``--backbone`` the model is fine-tuned end to end on the dataset's images; a model that
owns its backbone (e.g. a :class:`~zslkit.models.TokenAttentionModel`) reads the images under
``--dataset-root`` itself.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from zslkit.cli import CLIError
from zslkit.cli.options import (
    RenamedStore,
    add_backbone_options,
    add_dataset_options,
    add_import_option,
    add_logger_option,
    add_threads_option,
    backbone_from_args,
    check_out_dir,
    device_name,
    load_dataset_from_args,
    logger_names,
    parse_assignments,
    positive_int,
    positive_number,
    refuse_without,
)
from zslkit.contracts import owns_backbone

RECIPE = "default: the recipe's"
log = logging.getLogger("zslkit.training")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an attention model (msdn, dazle, ...) and print T1/U/S/H/AUSUC")
    p.add_argument("--dataset", default="synthetic", help="registered dataset name (default: synthetic)")
    p.add_argument("--model", "--method", dest="model", action=RenamedStore, default=None,
                   help="registered model name (default: the --config's model, else msdn)")
    p.add_argument("--config", default=None, help="packaged recipe name (msdn/cub, dazle/sun, ...) or YAML path "
                   "(default: the model's recipe for the dataset, else its defaults)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"passes over the training split ({RECIPE})")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"images per step ({RECIPE})")
    p.add_argument("--lr", type=positive_number, default=None, help=f"learning rate ({RECIPE})")
    p.add_argument("--seed", type=int, default=None, help=f"training seed ({RECIPE})")
    p.add_argument("--device", type=device_name, default=None, help=f"cpu, cuda, cuda:N or auto ({RECIPE})")
    add_threads_option(p)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any recipe field, e.g. loss_weights.self_calibration=0.2; repeatable (default: none)")
    p.add_argument("--out", default=None, help="directory for checkpoints, history.csv/json and results.csv/json "
                   "(default: none, nothing is written)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch remains, on stderr)")
    add_logger_option(p)
    add_dataset_options(p)
    add_import_option(p)
    add_backbone_options(p, default=None, help="fine-tune end to end through this timm backbone (e.g. resnet101) on the "
                         "dataset's images (needs --dataset-root; learning rate: --set backbone_lr=...; default: none, "
                         "train on the dataset's features)")
    p.add_argument("--dataset-root", default=None, help="with --backbone, or for a model that owns its backbone: the "
                   "folder holding the dataset's images (default: none)")
    p.set_defaults(func=run)


def check_arguments(args) -> None:
    """Refuse flags that do nothing without another (naming both), before anything loads."""
    refuse_without("--backbone", args.backbone is not None, {"--random-init": args.random_init, "--weights": args.weights is not None})
    # a model that owns its backbone reads the images under --dataset-root itself
    refuse_without("--backbone", args.backbone is not None or owns_backbone(args.model),
                   {"--dataset-root": args.dataset_root is not None})
    if args.resume and args.out is None:
        raise CLIError("--resume continues the run in --out, which was not given; add --out DIR or drop --resume")
    check_out_dir(args.out, create=not args.resume)  # a resumed directory must exist (the trainer says if not)


def run(args) -> int:
    from zslkit import distributed
    from zslkit.bench import format_markdown, write_results
    from zslkit.training import choose_recipe, evaluate, load_config, train

    check_arguments(args)
    dataset = load_dataset_from_args(args.dataset, args)
    model, recipe = choose_recipe(args.model, dataset.name, args.config)
    config = recipe.config
    overrides = parse_assignments(args.set, "--set")
    for field in ("epochs", "batch_size", "lr", "seed", "device"):
        if getattr(args, field) is not None:
            overrides[field] = getattr(args, field)
    if args.threads is not None:
        overrides["num_threads"] = args.threads
    for key in ("loss_weights", "model_options"):
        if isinstance(overrides.get(key), dict):
            overrides[key] = {**getattr(config, key), **overrides[key]}
    config = load_config(config, **overrides)
    recipe = recipe.with_config(config)
    backbone, inputs = image_inputs(args, dataset) if args.backbone else (None, owned_inputs(args, dataset, model, config))
    names = logger_names(args.logger, config.loggers, args.out)
    with distributed.process_group(config.device), _loggers(names, args, dataset, model, recipe) as loggers:
        if distributed.is_main():
            log.info("%s", recipe.line())
        result = train(dataset, model, recipe, out_dir=args.out, progress=not args.no_progress, resume=args.resume,
                       backbone=backbone, inputs=inputs, loggers=loggers)
        metrics = evaluate(result.model, dataset, batch_size=config.eval_batch_size, inputs=inputs)
        processes, main = distributed.world_size(), distributed.is_main()
        if not main:
            return 0
        row = _result_row(args, model, dataset, config, recipe, result, metrics, processes)
        title = f"{dataset.name}: {model}, {row['epochs']} epoch{'' if row['epochs'] == 1 else 's'}, seed {config.seed}"
        table = format_markdown([row], title=title)
        loggers.log_summary({**metrics, "epoch": row["epochs"], "gamma": 0.0, "wall_s": row["wall_s"]})
        loggers.log_table("results", [row], table)
    print(table)
    if args.out:
        paths = write_results([row], args.out)
        log.info("checkpoint %s; wrote %s", result.checkpoint, ", ".join(str(p) for p in paths))
    return 0


@contextmanager
def _loggers(names: list[str], args, dataset, model: str, recipe):
    """The run's metric loggers (:mod:`zslkit.loggers`; none off rank 0), sent the config, closed on exit."""
    from zslkit import distributed
    from zslkit.loggers import LoggerSet, build_loggers

    if not names or not distributed.is_main():
        yield LoggerSet()
        return
    name = f"{model}-{dataset.name}-trainval-seed{recipe.config.seed}".replace("/", "-")
    with build_loggers(names, args.out, name) as loggers:
        loggers.log_config({"command": "train", "model": model, "dataset": dataset.name, "split": "trainval",
                            "recipe": recipe.name, "backbone": args.backbone, **recipe.config.to_dict()})
        yield loggers


def _result_row(args, model, dataset, config, recipe, result, metrics, processes) -> dict:
    """The printed table's row: the metrics, what trained and how long."""
    epochs = result.history[-1]["epoch"] if result.history else 0  # what the model trained, resumed runs too
    row = {"method": model, **metrics, "seed": config.seed, "epochs": epochs, "dataset": dataset.name,
           "wall_s": sum(h["wall_s"] for h in result.history), "recipe": recipe.name}
    if processes > 1:
        row["processes"] = processes
    if args.backbone:
        row["backbone"] = args.backbone
    return row


def owned_inputs(args, dataset, model: str, config):
    """The images under ``--dataset-root`` for a model that owns its backbone (its class's ``image_reader``),
    preprocessed at ``--image-size``; ``None`` without ``--dataset-root``."""
    from zslkit.registry import get_component

    if args.dataset_root is None:
        return None
    reader = getattr(get_component("model", model), "image_reader", None)
    if reader is None:
        raise CLIError(f"--dataset-root: model {model!r} reads region features; give --backbone to fine-tune it on the "
                       "images through a timm backbone, or leave --dataset-root out")
    return image_inputs(args, dataset, reader({**config.model_options}))[1]


def image_inputs(args, dataset, backbone=None):
    """``(backbone, images)``: the backbone (default: the timm one of ``--backbone``) and the
    dataset's images under ``--dataset-root``, preprocessed for it at ``--image-size``."""
    from zslkit.datasets import resolve_images
    from zslkit.extract import ImageFiles, preprocessing

    files = dataset.metadata.get("image_files")
    if not files:
        raise CLIError(f"a backbone reads images, but dataset {dataset.name!r} lists no image files "
                       "(use an xlsa17 dataset: xlsa17, cub, sun, awa2)")
    if args.dataset_root is None:
        raise CLIError("a backbone needs --dataset-root, the folder holding the dataset's images")
    images = resolve_images(files, args.dataset_root)
    if images.missing:
        raise CLIError(images.missing_report())
    backbone = backbone_from_args(args) if backbone is None else backbone
    transform, config = preprocessing(backbone, args.image_size)
    return backbone, ImageFiles(images.paths, transform, config)
