"""``zslkit leakage``: which unseen classes of a benchmark the backbone's pretraining has already seen.

    zslkit leakage --dataset cub --pretraining in21k
    zslkit leakage --dataset sun,awa2 --pretraining vit_base_patch16_224.augreg2_in21k_ft_in1k --json leak.json

Each unseen class (xlsa17 split) is matched against every lemma of every synset of the
pretraining's ImageNet label set (timm's own files); every match is printed with its synset,
lemma and rule, then the overlapping classes and the clean subset. The table goes to stdout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from zslkit.cli import CLIError

log = logging.getLogger("zslkit.leakage")


def add_parser(sub) -> None:
    p = sub.add_parser("leakage", help="which unseen classes of cub/sun/awa2 a backbone's pretraining has seen")
    p.add_argument("--dataset", required=True, help="cub, sun or awa2, or several comma-separated")
    p.add_argument("--pretraining", required=True,
                   help="a label set (in1k, in12k, in21k, in22k, in21k-miil), a timm weight tag (augreg_in21k_ft_in1k) "
                        "or a timm model name with or without its tag (vit_base_patch16_224)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON here (default: none)")
    p.set_defaults(func=run)


def run(args) -> int:
    from zslkit.atomic import write_json_atomic
    from zslkit.leakage import XLSA17_DATASETS, format_report, pretraining_of, unseen_leakage

    datasets = [d.strip().lower() for d in args.dataset.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in XLSA17_DATASETS]
    if not datasets or unknown:
        raise CLIError(f"--dataset {args.dataset!r}: give cub, sun or awa2 (comma-separated for several)")
    try:
        pretraining = pretraining_of(args.pretraining)
    except ValueError as exc:
        raise CLIError(f"--pretraining: {exc}") from None
    log.info("pretraining %s", pretraining.describe())
    reports = {}
    for dataset in datasets:
        report = unseen_leakage(dataset, pretraining)
        print(format_report(report, dataset, pretraining))
        print()
        reports[dataset] = None if report is None else report.to_dict()
    if args.json:
        write_json_atomic(Path(args.json), {"pretraining": pretraining.source, "label_sets": list(pretraining.label_sets),
                                      "web_scale": pretraining.web_scale, "datasets": reports}, indent=2)
        log.info("wrote %s", args.json)
    return 0
