"""``zslkit eval``: score a checkpoint (zslkit's or the MSDN authors') on a dataset's test splits.

A checkpoint of end-to-end fine-tuning (``zslkit train --backbone``) is scored on the
dataset's images: its timm backbone is rebuilt from the checkpoint (architecture from the
checkpoint's description, weights from the checkpoint) and reads the images under
``--dataset-root`` at ``--image-size``.

``--localization --cub-parts DIR`` also scores where the attention maps peak against
CUB's part annotations (:mod:`zslkit.cli.localization`).
"""

from __future__ import annotations

from zslkit.cli.localization import add_localization_options, run_localization
from zslkit.cli.options import (
    add_dataset_options,
    add_import_option,
    load_dataset_from_args,
    positive_int,
    refuse_without,
)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint and print T1/U/S/H/AUSUC")
    p.add_argument("checkpoint", help="zslkit checkpoint (epoch_NNN.json, .safetensors or run directory), "
                   "or with --official a state dict saved by the authors' MSDN, TransZero or TransZero++ code")
    p.add_argument("--dataset", default=None, help="registered dataset name (default: the checkpoint's)")
    p.add_argument("--official", action="store_true", help="CHECKPOINT is an official state dict (.pth) of --official-model")
    p.add_argument("--official-model", choices=("msdn", "transzero", "transzero_pp"), default=None,
                   help="with --official: the authors' model that saved it (default: msdn)")
    p.add_argument("--normalize-embeddings", action="store_true",
                   help="with --official: the authors' normalize_V=True (their AWA2 setting)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per forward (default: %(default)s)")
    p.add_argument("--calibration", type=float, default=0.0,
                   help="constant subtracted from seen-class scores (GZSL) (default: %(default)s)")
    p.add_argument("--dataset-root", default=None,
                   help="for a fine-tuned checkpoint: the folder holding the dataset's images (default: none)")
    p.add_argument("--image-size", type=positive_int, default=448,
                   help="for a fine-tuned checkpoint: the size it was trained at (default: %(default)s)")
    add_dataset_options(p)
    add_import_option(p)
    add_localization_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from zslkit import distributed
    from zslkit.bench import format_markdown
    from zslkit.interop import load_official_msdn, load_official_transzero, load_official_transzero_pp
    from zslkit.training import evaluate, load_checkpoint
    from zslkit.training.checkpoint import build_model
    from zslkit.training.predict import check_class_space

    refuse_without("--official", args.official, {"--official-model": args.official_model is not None,
                                        "--normalize-embeddings": args.normalize_embeddings})
    if args.official:
        args.official_model = args.official_model or "msdn"
        if args.dataset is None:
            raise ValueError("--official needs --dataset: an official state dict does not name its dataset")
        loader = {"msdn": load_official_msdn, "transzero": load_official_transzero,
                  "transzero_pp": load_official_transzero_pp}[args.official_model]
        model = loader(args.checkpoint, normalize_embeddings=args.normalize_embeddings).eval()
        name, dataset_name = f"{args.official_model} (official)", args.dataset
    else:
        checkpoint = load_checkpoint(args.checkpoint)
        backbone = checkpoint_backbone(checkpoint)
        model = build_model(checkpoint, backbone).eval()
        name = f"{checkpoint.meta['model']['name']} (epoch {checkpoint.epoch})"
        dataset_name = args.dataset or str(checkpoint.meta.get("dataset", "")).split("/")[0]
        if not dataset_name:
            raise ValueError(f"{checkpoint.path}: the checkpoint does not name its dataset; pass --dataset")
    dataset = load_dataset_from_args(dataset_name, args)
    inputs = None
    if not args.official and backbone is not None:
        from zslkit.cli.train import image_inputs

        _, inputs = image_inputs(args, dataset, backbone)
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
        run_localization(args, model, dataset, inputs, preprocessing=None if inputs is None else _input_preprocessing(args, backbone))
    return 0


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
