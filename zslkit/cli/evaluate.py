"""``zslkit eval``: score a checkpoint (zslkit's, or one of the authors' code) on a dataset's test splits.

``--official --official-model NAME`` reads a state dict saved by the authors' code through the
registered converter ``NAME`` (``zslkit list converter``); what the state dict lacks (class
attributes, split, word vectors, attribute groups) comes from ``--dataset``, and
``--official-option KEY=VALUE`` passes the converter's own options (e.g. APN's ``avg_pool=true``).

A checkpoint of end-to-end fine-tuning (``zslkit train --backbone``) is scored on the
dataset's images: its timm backbone is rebuilt from the checkpoint (architecture from the
checkpoint's description, weights from the checkpoint) and reads the images under
``--dataset-root`` at the size the run trained at (its checkpoints record how their images were
preprocessed; ``--image-size`` overrides it, with a warning naming both sizes). So does a model that owns its backbone
(``model.image_backbone``, e.g. a :class:`~zslkit.models.TokenAttentionModel`) when
``--dataset-root`` is given; without it such a model reads the dataset's features, which must
then be images (a dataset of images such as the built-in synthetic one in its image form).

``--localization --cub-parts DIR`` also scores where the attention maps peak against
CUB's part annotations (:mod:`zslkit.cli.localization`).
"""

from __future__ import annotations

from zslkit.cli.localization import add_localization_options, run_localization
from zslkit.cli.options import (
    RegisteredNames,
    add_dataset_options,
    add_import_option,
    load_dataset_from_args,
    parse_assignments,
    positive_int,
    refuse_without,
    resolve_image_size,
)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint and print T1/U/S/H/AUSUC")
    p.add_argument("checkpoint", help="zslkit checkpoint (epoch_NNN.json, .safetensors or run directory), "
                   "or with --official a state dict saved by the authors' code of --official-model")
    p.add_argument("--dataset", default=None, help="registered dataset name (default: the checkpoint's)")
    p.add_argument("--official", action="store_true", help="CHECKPOINT is an official state dict (.pth) of --official-model")
    p.add_argument("--official-model", choices=RegisteredNames("converter"), default=None, metavar="NAME",
                   help="with --official: the registered converter of the authors' model that saved it, one of "
                   "%(choices)s (default: msdn)")
    p.add_argument("--official-option", action="append", metavar="KEY=VALUE",
                   help="with --official: an option of the converter (repeatable), e.g. avg_pool=true for APN on SUN "
                   "and AWA2 (default: none)")
    p.add_argument("--normalize-embeddings", action="store_true",
                   help="with --official: the authors' normalize_V=True (their AWA2 setting; msdn, transzero, transzero_pp)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per forward (default: %(default)s)")
    p.add_argument("--calibration", type=float, default=0.0,
                   help="constant subtracted from seen-class scores (GZSL) (default: %(default)s)")
    p.add_argument("--dataset-root", default=None,
                   help="for a fine-tuned checkpoint or a model that owns its backbone: the folder holding the "
                   "dataset's images (default: none)")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="images are resized and cropped to this many pixels a side (default: the size the checkpoint's "
                   "run trained at, which it records; with --official it must be given)")
    add_dataset_options(p)
    add_import_option(p)
    add_localization_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from zslkit import distributed
    from zslkit.bench import format_markdown
    from zslkit.training import evaluate, load_checkpoint
    from zslkit.training.checkpoint import build_model
    from zslkit.training.predict import check_class_space

    refuse_without("--official", args.official, {"--official-model": args.official_model is not None,
                                        "--official-option": bool(args.official_option),
                                        "--normalize-embeddings": args.normalize_embeddings})
    if args.official:
        args.official_model = args.official_model or "msdn"
        if args.dataset is None:
            raise ValueError("--official needs --dataset: an official state dict does not name its dataset")
        dataset = load_dataset_from_args(args.dataset, args)
        model, backbone = convert_official(args, dataset).eval(), None
        name = f"{args.official_model} (official)"
    else:
        checkpoint = load_checkpoint(args.checkpoint)
        backbone = checkpoint_backbone(checkpoint)
        model = build_model(checkpoint, backbone).eval()
        name = f"{checkpoint.meta['model']['name']} (epoch {checkpoint.epoch})"
        dataset_name = args.dataset or str(checkpoint.meta.get("dataset", "")).split("/")[0]
        if not dataset_name:
            raise ValueError(f"{checkpoint.path}: the checkpoint does not name its dataset; pass --dataset")
        dataset = load_dataset_from_args(dataset_name, args)
    # the images' reader: a fine-tuned checkpoint's backbone, or with --dataset-root a model's own one
    owned = getattr(model, "image_backbone", None) if args.dataset_root is not None else None
    reader, inputs = backbone if backbone is not None else owned, None
    if reader is not None:
        from zslkit.cli.train import image_inputs

        args.image_size = resolve_image_size(args, None if args.official else checkpoint.meta, args.checkpoint)
        _, inputs = image_inputs(args, dataset, reader)
    try:
        check_class_space(model, dataset)
    except ValueError as exc:  # name the checkpoint that does not fit
        raise ValueError(f"{args.checkpoint}: {exc}") from None
    with distributed.process_group("cpu"):  # under torchrun: every rank scores a share of the images
        metrics = evaluate(model, dataset, batch_size=args.batch_size, calibration=args.calibration, inputs=inputs)
        main = distributed.is_main()
    if not main:
        return 0
    print(format_markdown([{"method": name, **metrics}], title=f"{dataset.name}: {args.checkpoint}"))
    if args.localization:
        run_localization(args, model, dataset, inputs, preprocessing=None if inputs is None else _input_preprocessing(args, reader))
    return 0


def convert_official(args, dataset):
    """The model of ``--official-model``'s converter on ``args.checkpoint``: the dataset gives the arguments the
    converter takes among :data:`~zslkit.models.official.DATASET_ARGUMENTS`; ``--official-option`` and
    ``--normalize-embeddings`` its options (an option it does not have is refused, naming the nearest)."""
    import inspect

    import zslkit
    from zslkit.models.official import DATASET_ARGUMENTS
    from zslkit.registry import did_you_mean

    name = args.official_model
    takes = inspect.signature(zslkit.get_component("converter", name)).parameters
    arguments = {key: getattr(dataset, key) for key in DATASET_ARGUMENTS if key in takes}
    options = parse_assignments(args.official_option, "--official-option")
    if args.normalize_embeddings:
        options["normalize_embeddings"] = True
    accepted = [key for key, p in takes.items() if p.kind is not p.VAR_KEYWORD and key != "source" and key not in arguments]
    if any(p.kind is p.VAR_KEYWORD for p in takes.values()):  # more options of the model it builds (named like it)
        accepted += [key for key in inspect.signature(zslkit.get_component("model", name)).parameters if key not in DATASET_ARGUMENTS]
    for key in options:
        if key in arguments:
            raise ValueError(f"--official-option {key}: converter {name!r} takes it from --dataset {dataset.name!r}")
        if key not in accepted:
            raise ValueError(f"--official-option {key}: converter {name!r} has no such option{did_you_mean(key, accepted)}")
    return zslkit.create("converter", name, source=args.checkpoint, **arguments, **options)


def _input_preprocessing(args, backbone) -> dict:
    """The preprocessing a fine-tuned checkpoint's images go through (what ``image_inputs`` builds)."""
    from zslkit.extract import preprocessing

    return preprocessing(backbone, args.image_size)[1]


def checkpoint_backbone(checkpoint):
    """The timm backbone a fine-tuned checkpoint names (random weights: the checkpoint's replace them), else ``None``."""
    import zslkit
    from zslkit.cli import CLIError

    described = checkpoint.meta.get("model", {}).get("options", {}).get("backbone")
    if described is None:
        return None
    if not isinstance(described, dict) or described.get("name") != "timm" or not described.get("model"):
        raise CLIError(f"{checkpoint.path}: the model was fine-tuned with a backbone zslkit cannot rebuild ({described}); "
                       "evaluate it from Python: zslkit.training.load_model(path, backbone=<that module>)")
    return zslkit.create("backbone", "timm", model_name=described["model"], random_init=True)
