"""``zslkit data info PATH`` and ``zslkit data check``: what a dataset or store holds, and whether it is whole."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect and check datasets and feature stores")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    info = actions.add_parser("info", help="summarise an xlsa17 folder, a feature-map HDF5 file or a feature store")
    info.add_argument("path")
    info.set_defaults(func=run_info)

    check = actions.add_parser("check", help="load everything and report problems (missing images, incomplete store...)")
    check.add_argument("--xlsa17", required=True, help="xlsa17/data/<DATASET> folder")
    check.add_argument("--dataset-root", help="image folder root: check that every listed image exists (default: none, images not checked)")
    check.add_argument("--features", help="feature store directory or feature-map HDF5 file of the same images (default: none, features not checked)")
    check.add_argument("--attribute-vectors", help=".npy or .pkl attribute word vectors (default: none, vectors not checked)")
    check.add_argument("--attribute-names", help="attribute names file (default: the names the dataset ships)")
    check.add_argument("--scan-features", action="store_true",
                       help="read every region feature map and report the first NaN/inf (reads the whole file)")
    check.set_defaults(func=run_check)


def describe_dataset(dataset) -> list[str]:
    """Summary lines: sizes, classes, splits, features."""
    lines = [repr(dataset)]
    lines.append("splits: " + ", ".join(f"{k} {len(v)}" for k, v in dataset.splits.items()))
    if dataset.features is not None:
        dtype = getattr(dataset.features, "dtype", "?")
        lines.append(f"region features: {tuple(dataset.features.shape)} {dtype} ({type(dataset.features).__name__}, read lazily)")
    if dataset.global_features is not None:
        lines.append(f"global features: {dataset.global_features.shape}")
    if dataset.attribute_embeddings is not None:
        lines.append(f"attribute vectors: {dataset.attribute_embeddings.shape}")
    return lines


def describe_store(path: Path) -> list[str]:
    from zslkit.datasets.store import open_store

    store = open_store(path, allow_incomplete=True)
    meta = store.metadata
    state = "complete" if store.complete else f"INCOMPLETE: {store.written} of {len(store)} images extracted"
    lines = [
        f"feature store {path}: {' x '.join(map(str, store.shape))} {store.dtype.name}, {store.format}, "
        f"{store.nbytes / 1e9:.2f} GB, {state}",
        f"created by zslkit {store.info.get('zslkit_version')} on {store.info.get('created')}",
    ]
    if "backbone" in meta:
        lines.append("backbone: " + ", ".join(f"{k}={v}" for k, v in meta["backbone"].items()))
    if store.recipe_note is not None:
        lines.append(f"note: {store.recipe_note}")
    if store.prefix is not None:
        lines.append(f"prefix tokens: {' x '.join(map(str, store.prefix.shape))} (CLS first; after the final norm)")
    elif store.metadata.get("backbone", {}).get("name") == "timm":
        from zslkit.backbones.timm_backbone import prefix_tokens_note

        lines.append(f"prefix tokens: none ({prefix_tokens_note(store.metadata['backbone'])})")
    if "preprocessing" in meta:
        lines.append("preprocessing: " + ", ".join(f"{k}={v}" for k, v in meta["preprocessing"].items()))
    if "files" in meta:
        lines.append(f"images: {len(meta['files'])} (first: {meta['files'][0] if meta['files'] else '-'})")
    for name, digest in meta.get("split_files_sha256", {}).items():
        lines.append(f"{name} sha256 {digest}")
    return lines


def run_info(args) -> int:
    import zslkit
    from zslkit.datasets.store import is_store

    path = Path(args.path).expanduser()
    if is_store(path):
        lines = describe_store(path)
    elif path.is_file():
        lines = describe_dataset(zslkit.load_dataset("feature_h5", path=path))
    elif path.is_dir():
        lines = describe_dataset(zslkit.load_dataset("xlsa17", path=path, global_features=False))
    else:
        raise FileNotFoundError(f"{path}: not found")
    print("\n".join(lines))
    return 0


def run_check(args) -> int:
    import zslkit
    from zslkit.datasets import DatasetError, resolve_images
    from zslkit.datasets.checks import scan_finite_features

    problems = []
    xlsa17 = Path(args.xlsa17).expanduser()
    dataset = zslkit.load_dataset(
        "xlsa17", path=xlsa17, features=args.features, attribute_vectors=args.attribute_vectors,
        attribute_names=args.attribute_names, global_features=False,
    )
    print("\n".join(describe_dataset(dataset)))
    if args.scan_features and dataset.features is not None:
        try:
            scan_finite_features(dataset.features)
        except DatasetError as exc:
            problems.append(str(exc))
    if args.dataset_root:
        images = resolve_images(dataset.metadata["image_files"], args.dataset_root)
        if images.missing:
            problems.append(images.missing_report())
        else:
            print(f"images: all {len(images)} found under {images.root}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
