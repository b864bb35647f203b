"""``zslkit eval RUN --localization``: where the checkpoint's attention maps peak, against CUB's part annotations.

Prints, per branch with maps, the fraction of (image, attribute) pairs that hit their
part, per part and overall, and writes ``localization.json`` and ``localization.png``
(a per-part bar chart) to ``--localization-out`` (default: the run's directory).
"""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import CLIError

__all__ = ["add_localization_options", "run_localization"]


def add_localization_options(p) -> None:
    g = p.add_argument_group("localisation (--localization)")
    g.add_argument("--localization", action="store_true",
                   help="also score where the attention maps peak against CUB's part annotations (needs --cub-parts)")
    g.add_argument("--cub-parts", default=None,
                   help="the CUB_200_2011 folder with images.txt, bounding_boxes.txt and parts/ (parts.txt, part_locs.txt) (default: none; needed by --localization)")
    g.add_argument("--localization-criterion", default="apn",
                   help="apn: APN's box IoU test (default); pck: distance <= threshold * longer box side; pixels: distance <= threshold px")
    g.add_argument("--localization-threshold", type=float, default=None,
                   help="IoU for apn, fraction for pck, pixels for pixels (default: the criterion's: 0.5, 0.1, 20)")
    g.add_argument("--localization-box-scale", type=float, default=1.4, help="apn: boxes are the bird box divided by this (default: %(default)s, APN's)")
    g.add_argument("--localization-split", choices=("test_unseen", "test_seen", "trainval", "all"), default="test_unseen",
                   help="the images scored (default: %(default)s)")
    g.add_argument("--localization-attributes", choices=("all", "top_per_group"), default="all",
                   help="all (image, attribute) pairs, or per image the top-scoring attribute of each group (APN's selection) (default: %(default)s)")
    g.add_argument("--localization-baseline", action="store_true",
                   help="also score random maps (seeded): the chance level of the criterion on these images")
    g.add_argument("--localization-exclude", action="append", default=[], metavar="GROUP",
                   help="leave out a CUB attribute group, e.g. size; repeatable (default: none left out)")
    g.add_argument("--localization-out", default=None, help="folder for localization.json and .png (default: the run's folder)")


def _image_sizes(files, root, inputs):
    """Image sizes read from the image files: those the model reads (``inputs``), else ``files``
    under ``root`` (``None`` without a root)."""
    from zslkit.extract import image_sizes

    if inputs is not None:  # resolved (and checked complete) when the images were made inputs
        return image_sizes(inputs.paths)
    if root is None:
        return None
    from zslkit.datasets import resolve_images

    images = resolve_images(files, root)
    if images.missing:
        raise CLIError(images.missing_report())
    return image_sizes(images.paths)


def run_localization(args, model, dataset, inputs=None, preprocessing=None) -> dict:
    """Score, print and write the localisation of ``model`` on ``dataset`` (see the module docstring)."""
    from zslkit.datasets.cub_parts import load_cub_parts
    from zslkit.training.localization import evaluate_localization, feature_geometry

    if args.cub_parts is None:
        raise CLIError("--localization needs --cub-parts, the CUB_200_2011 folder with the part annotations")
    files = dataset.metadata.get("image_files")
    if not files:
        raise CLIError(f"dataset {dataset.name!r} lists no image files to match the part annotations to (use cub or xlsa17)")
    parts = load_cub_parts(args.cub_parts, files)
    recorded = feature_geometry(dataset)[1] if inputs is None else None
    sizes = recorded if recorded is not None else _image_sizes(files, args.dataset_root, inputs)
    if sizes is None:
        raise CLIError("the features do not record the original image sizes; give --dataset-root, the folder holding the images")
    try:
        result = evaluate_localization(
            model, dataset, parts, split=args.localization_split, preprocessing=preprocessing, image_sizes=sizes,
            criterion=args.localization_criterion, threshold=args.localization_threshold,
            box_scale=args.localization_box_scale, exclude=args.localization_exclude,
            attributes=args.localization_attributes, baseline=args.localization_baseline, batch_size=args.batch_size,
            inputs=inputs,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(format_localization(result))
    _write(result, _out_dir(args))
    return result


def format_localization(result: dict) -> str:
    """A markdown table: one row per part, one column per branch; then overall, mean over parts, pairs."""
    branches = result["branches"]
    names = list(branches)
    parts = list(next(iter(branches.values()))["per_part"])

    def cell(value):
        return "n/a" if value is None else f"{value:.3f}"

    lines = [f"localisation ({result['criterion']}, threshold {result['threshold']}, {result['split']}, "
             f"{result['attributes']} attributes)",
             "| part | pairs | excluded | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 3)]
    first = branches[names[0]]["per_part"]
    for part in parts:
        row = [cell(branches[b]["per_part"][part]["fraction"]) for b in names]
        lines.append(f"| {part} | {first[part]['pairs']} | {first[part]['excluded']} | " + " | ".join(row) + " |")
    for key in ("overall", "mean_over_parts"):
        lines.append(f"| {key} | {branches[names[0]]['pairs']} | {branches[names[0]]['excluded']} | "
                     + " | ".join(cell(branches[b][key]) for b in names) + " |")
    lines += [f"note: {note}" for note in result.get("assumed", [])]
    return "\n".join(lines)


def _out_dir(args) -> Path:
    if args.localization_out is not None:
        return Path(args.localization_out)
    path = Path(args.checkpoint)
    return path if path.is_dir() else path.parent


def _write(result: dict, out: Path) -> None:
    from zslkit.atomic import write_json_atomic
    from zslkit.viz import localization_figure

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "localization.json", result)
    localization_figure(result).savefig(out / "localization.png", dpi=110)
    print(f"wrote {out / 'localization.json'} and {out / 'localization.png'}")
