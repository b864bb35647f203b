"""``zslkit extract``: images of an xlsa17 benchmark -> timm backbone -> feature store.

Under ``torchrun --nproc-per-node N -m zslkit extract ...`` every process extracts a
slice of the images into the same store (see ``docs/distributed.md``).
"""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError
from zslkit.cli.options import (
    add_backbone_options,
    backbone_from_args,
    check_out_dir,
    device_name,
    positive_int,
)


def add_parser(sub) -> None:
    p = sub.add_parser("extract", help="extract region feature maps of a dataset's images into a feature store")
    p.add_argument("--dataset-root", required=True, help="image folder root (CUB_200_2011, SUN, Animals_with_Attributes2)")
    p.add_argument("--xlsa17", required=True, help="xlsa17/data/<DATASET> folder with res101.mat (image list) and att_splits.mat")
    p.add_argument("--out", required=True, help="store directory to write (resumed if interrupted)")
    add_backbone_options(p, default=None, help="timm model name (default: resnet101, unless --clip)")
    p.add_argument("--clip", default=None, metavar="MODEL",
                   help="instead of --backbone: store each image's CLIP embedding (N, D, 1, 1) for the bench's CLIP rows; "
                        "an open_clip model name with --weights (its local checkpoint), give --image-size 224 (default: none)")
    p.add_argument("--crop-pct", type=float, default=1.0, help="center crop fraction (1.0: resize to image size, then crop) (default: %(default)s)")
    p.add_argument("--interpolation", default=None, help="resize interpolation (default: timm's for the model)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward (default: %(default)s)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="stored dtype (default: %(default)s)")
    p.add_argument("--format", choices=("npy", "safetensors"), default="npy", help="store file format (default: %(default)s)")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers decoding images (default: %(default)s)")
    p.add_argument("--pretraining", default=None, metavar="TAG",
                   help="what the backbone's weights were pretrained on (in1k, in21k, ... or a timm weight tag), recorded "
                        "in the store for zslkit bench's leak-free columns (default: none; a model name with a tag says it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_clip(args) -> None:
    """Refuse ``--clip`` with ``--backbone``, or without exactly one of ``--weights`` and ``--random-init``."""
    if args.clip is None:
        return
    if args.backbone is not None:
        raise CLIError(f"--backbone {args.backbone} and --clip {args.clip} both name the image model; give one of them")
    if (args.weights is None) == (not args.random_init):
        raise CLIError("--clip needs exactly one of --weights PATH (a local open_clip checkpoint; nothing is downloaded) "
                       "or --random-init")


def _backbone(args):
    """The timm backbone of ``--backbone`` (default resnet101), or the ``clip_image`` backbone of ``--clip``."""
    import zslkit

    if args.clip is None:
        args.backbone = args.backbone or "resnet101"
        return backbone_from_args(args)
    return zslkit.create("backbone", "clip_image", model=args.clip, weights=args.weights, random_init=args.random_init)


def run(args) -> int:
    from zslkit import distributed
    from zslkit.datasets import resolve_images
    from zslkit.datasets.xlsa17 import RES101_FILE, read_res101, split_file_checksums
    from zslkit.extract import extract_features

    _check_clip(args)
    check_out_dir(args.out, create=False)  # the store creates it (or resumes the one there)
    xlsa17 = Path(args.xlsa17).expanduser()
    res101 = read_res101(xlsa17 / RES101_FILE, features=False)
    images = resolve_images(res101.image_files, args.dataset_root)
    if images.missing:
        raise CLIError(images.missing_report())
    backbone = _backbone(args)
    recorded = {} if args.pretraining is None else {"pretraining": _pretraining(args.pretraining)}
    with distributed.process_group(args.device):
        store = extract_features(
            images, backbone, args.out,
            image_size=args.image_size, crop_pct=args.crop_pct, interpolation=args.interpolation,
            batch_size=args.batch_size, dtype=args.dtype, format=args.format, device=args.device,
            num_workers=args.workers, progress=not args.no_progress,
            metadata={"dataset": xlsa17.name, "split_files_sha256": split_file_checksums(xlsa17), **recorded},
        )
        main = distributed.is_main()
    if not main:
        return 0
    shape = " x ".join(str(s) for s in store.shape)
    print(f"wrote {store.path}: {shape} {store.dtype.name} ({store.nbytes / 1e9:.2f} GB)")
    return 0


def _pretraining(text: str) -> str:
    """``--pretraining``, checked (a label set or timm weight tag zslkit knows), as given."""
    from zslkit.leakage import pretraining_of

    try:
        pretraining_of(text)
    except ValueError as exc:
        raise CLIError(f"--pretraining: {exc}") from None
    return text
