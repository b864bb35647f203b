"""``zslkit embed-attributes``: attribute names -> phrases -> sentence-transformer vectors (.npy)."""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError


def add_parser(sub) -> None:
    p = sub.add_parser("embed-attributes", help="embed attribute names with a local sentence-transformer model")
    p.add_argument("names", help="attribute names: CUB attributes.txt, AwA2 predicates.txt, SUN attributes.mat or one per line")
    p.add_argument("--out", help="output .npy file, (I, D) float32 (default: none; needed unless --phrases)")
    p.add_argument("--model", help="local sentence-transformer directory, installed package, or cached model name (default: none; needed unless --phrases)")
    p.add_argument("--batch-size", type=int, default=64, help="phrases per forward (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: sentence-transformers' choice)")
    p.add_argument("--phrases", action="store_true", help="only print the phrases that would be embedded")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from zslkit.datasets import read_attribute_names
    from zslkit.embed_attributes import attribute_phrase, embed_attributes

    names = read_attribute_names(args.names)
    if args.phrases:
        for name in names:
            print(f"{name}\t{attribute_phrase(name)}")
        return 0
    if not args.out or not args.model:
        raise CLIError("give --model (a local sentence-transformer) and --out FILE.npy, or --phrases to preview")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise CLIError(f"--out must end in .npy, got {out}")
    vectors = embed_attributes(names, args.model, batch_size=args.batch_size, device=args.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    print(f"wrote {out}: {vectors.shape[0]} x {vectors.shape[1]} attribute vectors")
    return 0
