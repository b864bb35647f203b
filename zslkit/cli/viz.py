"""``zslkit viz attention``: a trained model's attention maps on one image, as a PNG."""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="draw pictures of trained models")
    kinds = p.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    a = kinds.add_parser("attention", help="top-k attribute attention maps of every branch on one image")
    a.add_argument("--checkpoint", required=True, help="checkpoint written by zslkit train")
    a.add_argument("--image", required=True)
    a.add_argument("--out", required=True, help="output image file (.png, .pdf, ...)")
    a.add_argument("--top-k", type=int, default=8)
    a.add_argument("--backbone", default=None, help="timm model the features were extracted with (default resnet101; "
                   "not for a model that owns its backbone)")
    a.add_argument("--weights", default=None, help="its local weights file")
    a.add_argument("--random-init", action="store_true", help="random backbone (tests only)")
    a.add_argument("--image-size", type=int, default=448)
    a.add_argument("--crop-pct", type=float, default=1.0)
    a.add_argument("--interpolation", default=None)
    a.add_argument("--attribute-names", default=None, help="attribute names file (default: names stored with the model)")
    a.add_argument("--device", default="cpu")
    a.set_defaults(func=run_attention)


def load_model(checkpoint: str):
    """The model of a ``zslkit train`` checkpoint, via ``zslkit.training.load_model`` (imported lazily)."""
    try:
        from zslkit.training import load_model as load
    except ImportError as exc:
        raise CLIError(f"reading checkpoints needs zslkit.training, which this installation lacks ({exc})") from None
    return load(checkpoint)


def run_attention(args) -> int:
    import torch
    from PIL import Image

    import zslkit
    from zslkit.datasets import read_attribute_names
    from zslkit.extract import preprocessing
    from zslkit.viz import attention_figure

    model = load_model(args.checkpoint).to(args.device)
    owned = getattr(model, "image_backbone", None)
    if owned is not None and (args.backbone or args.weights or args.random_init):
        raise CLIError(f"{args.checkpoint}: the model owns its backbone (read from the checkpoint); "
                       "drop --backbone, --weights and --random-init")
    if owned is None and args.weights is None and not args.random_init:
        raise CLIError("give the backbone's --weights PATH (nothing is downloaded) or --random-init")
    if owned is None:
        backbone = zslkit.create("backbone", "timm", model_name=args.backbone or "resnet101", weights=args.weights,
                                 random_init=args.random_init).to(args.device).eval()
    transform, _ = preprocessing(owned or backbone, args.image_size, crop_pct=args.crop_pct, interpolation=args.interpolation)
    with Image.open(args.image) as image:
        rgb = image.convert("RGB")
    with torch.no_grad():
        images = transform(rgb)[None].to(args.device)
        features = images if owned is not None else backbone(images)  # a model that owns its backbone reads the image
    names = read_attribute_names(args.attribute_names) if args.attribute_names else getattr(model, "attribute_names", None)
    figure = attention_figure(model, rgb, features[0], attribute_names=names, top_k=args.top_k, image_size=args.image_size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0
