"""``zslkit viz attention``: a trained model's attention maps on one image, as a PNG."""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError
from zslkit.cli.options import (
    IMAGE_SIZE,
    add_backbone_options,
    add_import_option,
    device_name,
    positive_int,
    resolve_image_size,
)


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="draw pictures of trained models")
    kinds = p.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    a = kinds.add_parser("attention", help="top-k attribute attention maps of every branch on one image")
    a.add_argument("--checkpoint", required=True, help="checkpoint written by zslkit train (epoch_NNN.json or run directory)")
    a.add_argument("--image", required=True, help="the image to draw the maps on")
    a.add_argument("--out", required=True, help="output image file (.png, .pdf, ...)")
    a.add_argument("--top-k", type=positive_int, default=8, help="attributes drawn per branch (default: %(default)s)")
    add_backbone_options(a, default=None, help="timm model the checkpoint's features were extracted with (default: "
                         "resnet101; none for a model that owns its backbone: it reads the image itself)",
                         image_size=None, image_size_help="images are resized and cropped to this many pixels a side "
                         "(default: for a model that owns its backbone the size its run trained at, which the "
                         "checkpoint records; else 448)")
    a.add_argument("--crop-pct", type=float, default=1.0,
                   help="center crop fraction, as at extraction (default: %(default)s)")
    a.add_argument("--interpolation", default=None, help="resize interpolation (default: timm's for the backbone)")
    a.add_argument("--attribute-names", default=None, help="attribute names file (default: the names stored with the model)")
    a.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    add_import_option(a)
    a.set_defaults(func=run_attention)


def load_model(checkpoint: str):
    """``(model, its checkpoint's JSON)`` of a ``zslkit train`` checkpoint, via ``zslkit.training`` (imported lazily)."""
    try:
        from zslkit.training import load_checkpoint
        from zslkit.training.checkpoint import build_model
    except ImportError as exc:
        raise CLIError(f"reading checkpoints needs zslkit.training, which this installation lacks ({exc})") from None
    found = load_checkpoint(checkpoint)
    return build_model(found).eval(), found.meta


def check_backbone_fits(model, meta: dict, channels: int, args) -> None:
    """Refuse, in a sentence, a backbone whose features are not those the checkpoint's model was trained on."""
    expected = getattr(model, "feature_dim", None)
    if expected is None or expected == channels:
        return
    dataset = str(meta.get("dataset", "?"))
    trained = (f"{args.checkpoint}: the model was trained on the {expected}-channel features of dataset {dataset!r}, "
               f"backbone {args.backbone!r} gives {channels} channels")
    if dataset.split("/")[0] == "synthetic":
        raise CLIError(
            f"{trained}: a features-only checkpoint has no backbone of its own to draw an image through, and the "
            "synthetic dataset's features come from no image at all. Draw a checkpoint trained on features extracted "
            "from images (zslkit extract, then zslkit train) or fine-tuned end to end (zslkit train --backbone); "
            "from Python, zslkit.viz.attention_figure draws the maps of any feature map (data.features[i])"
        )
    raise CLIError(f"{trained}: a features-only checkpoint has no backbone of its own to draw an image through; "
                   "give the --backbone and --weights that extracted its features (zslkit extract)")


def run_attention(args) -> int:
    import torch
    from PIL import Image

    import zslkit
    from zslkit.datasets import read_attribute_names
    from zslkit.extract import preprocessing
    from zslkit.models.backbone_model import backbone_channels
    from zslkit.viz import attention_figure

    model, meta = load_model(args.checkpoint)
    model = model.to(args.device)
    owned = getattr(model, "image_backbone", None)
    if owned is not None and (args.backbone or args.weights or args.random_init):
        raise CLIError(f"{args.checkpoint}: the model owns its backbone (read from the checkpoint); "
                       "drop --backbone, --weights and --random-init")
    if owned is None and args.weights is None and not args.random_init:
        raise CLIError("give the backbone's --weights PATH (nothing is downloaded) or --random-init")
    if owned is None:
        args.backbone = args.backbone or "resnet101"
        backbone = zslkit.create("backbone", "timm", model_name=args.backbone, weights=args.weights,
                                 random_init=args.random_init).to(args.device).eval()
    if owned is not None:
        args.image_size = resolve_image_size(args, meta, args.checkpoint)
    elif args.image_size is None:
        args.image_size = IMAGE_SIZE
    transform, _ = preprocessing(owned or backbone, args.image_size, crop_pct=args.crop_pct, interpolation=args.interpolation)
    with Image.open(args.image) as image:
        rgb = image.convert("RGB")
    batch = transform(rgb)[None].to(args.device)
    if owned is None:
        check_backbone_fits(model, meta, backbone_channels(backbone, batch), args)  # before the (long) forward
    with torch.no_grad():
        features = batch if owned is not None else backbone(batch)  # a model that owns its backbone reads the image
    names = read_attribute_names(args.attribute_names) if args.attribute_names else getattr(model, "attribute_names", None)
    figure = attention_figure(model, rgb, features[0], attribute_names=names, top_k=args.top_k, image_size=args.image_size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0
