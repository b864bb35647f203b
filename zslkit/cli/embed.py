"""``zslkit embed-attributes``: attribute names -> phrases -> sentence-transformer or CLIP text vectors (.npy).

With ``--clip MODEL --weights PATH`` the phrases go through the dataset's prompt templates
(:mod:`zslkit.clip.prompts`) and CLIP's text tower; ``--class-names FILE --class-out FILE.npy``
also writes the class names' embeddings (``docs/clip.md``).
"""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError


def add_parser(sub) -> None:
    p = sub.add_parser("embed-attributes", help="embed attribute (and class) names with a local sentence-transformer or CLIP model")
    p.add_argument("names", help="attribute names: CUB attributes.txt, AwA2 predicates.txt, SUN attributes.mat or one per line")
    p.add_argument("--out", help="output .npy file, (I, D) float32 (default: none; needed unless --phrases)")
    p.add_argument("--model", help="local sentence-transformer directory, installed package, or cached model name (default: none; needed unless --phrases or --clip)")
    p.add_argument("--clip", default=None, metavar="MODEL",
                   help="embed with this CLIP model's text tower instead (an open_clip name, e.g. ViT-B-16-quickgelu; "
                        "needs --weights, or zslkit-tiny with --random-init) (default: none)")
    p.add_argument("--weights", default=None, help="with --clip: the local open_clip checkpoint; nothing is downloaded (default: none)")
    p.add_argument("--random-init", action="store_true", help="with --clip: random weights (tests only)")
    p.add_argument("--dataset", default="default", help="with --clip: whose prompt templates: cub, sun, awa2, synthetic (default: %(default)s)")
    p.add_argument("--ensemble", action="store_true", help="with --clip: average every template of the set (default: the first)")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="with --clip: also embed these class names (CUB classes.txt, AwA2 classes.txt, one per line) (default: none)")
    p.add_argument("--class-out", default=None, metavar="FILE",
                   help="with --class-names: output .npy file, (K, D) float32 (default: none)")
    p.add_argument("--batch-size", type=int, default=64, help="phrases per forward (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: sentence-transformers' choice)")
    p.add_argument("--phrases", action="store_true", help="only print the phrases that would be embedded")
    p.set_defaults(func=run)


def _npy(path: str, flag: str) -> Path:
    out = Path(path)
    if out.suffix != ".npy":
        raise CLIError(f"{flag} must end in .npy, got {out}")
    return out


def _save(out: Path, vectors, what: str) -> None:
    """Write ``(n, D)`` ``vectors`` to ``out`` and say so on stdout."""
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    print(f"wrote {out}: {vectors.shape[0]} x {vectors.shape[1]} {what} vectors")


def _check_flags(args) -> None:
    clip_only = {"--weights": args.weights is not None, "--random-init": args.random_init, "--ensemble": args.ensemble,
                 "--class-names": args.class_names is not None, "--dataset": args.dataset != "default"}
    if args.clip is None:
        given = [flag for flag, on in clip_only.items() if on]
        if given:
            raise CLIError(f"{given[0]} is for CLIP text embeddings: give --clip MODEL too")
    elif args.model:
        raise CLIError(f"--model {args.model} and --clip {args.clip} both name the text encoder; give one of them")
    if (args.class_names is None) != (args.class_out is None):
        raise CLIError("--class-names FILE and --class-out FILE.npy go together; give both or neither")


def run(args) -> int:
    from zslkit.datasets import read_attribute_names
    from zslkit.embed_attributes import attribute_phrase, embed_attributes

    _check_flags(args)
    names = read_attribute_names(args.names)
    if args.phrases:
        for name in names:
            print(f"{name}\t{attribute_phrase(name)}")
        return 0
    if not args.out or not (args.model or args.clip):
        raise CLIError("give --model (a local sentence-transformer) or --clip MODEL, and --out FILE.npy, or --phrases to preview")
    out = _npy(args.out, "--out")
    if args.clip is not None:
        return _run_clip(args, names, out)
    vectors = embed_attributes(names, args.model, batch_size=args.batch_size, device=args.device)
    _save(out, vectors, "attribute")
    return 0


def _run_clip(args, names: list[str], out: Path) -> int:
    from zslkit.clip import load_clip, name_embeddings
    from zslkit.datasets import read_attribute_names

    if (args.weights is None) == (not args.random_init):
        raise CLIError("--clip needs exactly one of --weights PATH (a local file; nothing is downloaded) or --random-init")
    class_out = None if args.class_out is None else _npy(args.class_out, "--class-out")
    classes = None if args.class_names is None else read_attribute_names(args.class_names)
    encoder = load_clip(args.clip, args.weights, random_init=args.random_init)
    _save(out, name_embeddings(encoder, names, args.dataset, "attribute", args.ensemble), "attribute")
    if classes is not None:
        _save(class_out, name_embeddings(encoder, classes, args.dataset, "class", args.ensemble), "class-name")
    return 0
