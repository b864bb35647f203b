"""``zslkit export RUN DIR``: a training run's latest checkpoint as a shareable model folder with its model card.

RUN is a ``zslkit train --out`` directory (or one checkpoint's JSON); DIR gets ``config.json``,
``model.safetensors`` and ``README.md`` (:mod:`zslkit.model_folder`), read back by ``zslkit.from_pretrained(DIR)``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from zslkit.cli import CLIError
from zslkit.cli.options import add_import_option

log = logging.getLogger("zslkit.pretrained")


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a training run's model as a shareable folder (config.json, "
                       "model.safetensors, README.md model card)")
    p.add_argument("run", help="a zslkit train --out directory (its latest checkpoint) or a checkpoint's epoch_NNN.json")
    p.add_argument("out", help="the model folder to write (created; files of the same names are replaced)")
    add_import_option(p)
    p.set_defaults(func=run)


def card_of(checkpoint, run: Path, folder: Path) -> dict:
    """The model card's facts from the checkpoint's record and the run's ``results.json`` (when there)."""
    from zslkit.bench import format_markdown

    meta = checkpoint.meta
    config, epoch = meta.get("config", {}), checkpoint.epoch
    recipe = (meta.get("recipe") or {}).get("name", "not recorded")
    card = {"dataset": meta.get("dataset", "not recorded"), "split": meta.get("split", "trainval"), "recipe": recipe,
            "config": config, "folder": folder.name,
            "commands": [f"zslkit train --model {meta['model']['name']} --dataset {meta.get('dataset')} --config {recipe} "
                         f"--epochs {epoch} --seed {config.get('seed', 0)} --out {run}",
                         f"zslkit export {run} {folder}"]}
    results = run / "results.json"
    if results.is_file():
        rows = json.loads(results.read_text())
        card["results"] = format_markdown(rows, title=f"{card['dataset']}: {meta['model']['name']}, {epoch} epochs")
        card["protocol"] = ("Protocol of `zslkit train`: the recipe's epochs on trainval, then evaluated once on "
                            "the test split (T1 on unseen classes; U, S, H without calibration, gamma 0; AUSUC over "
                            "all gammas). Per-class mean accuracy, %.")
    return card


def run(args) -> int:
    from zslkit.model_folder import save_pretrained
    from zslkit.training.checkpoint import build_model, load_checkpoint

    source = Path(args.run)
    if not source.exists():
        raise CLIError(f"{source}: no such run directory or checkpoint; give a zslkit train --out directory")
    checkpoint = load_checkpoint(source)
    model = build_model(checkpoint).eval()
    run_dir = checkpoint.path.parent
    folder = save_pretrained(model, args.out, card_of(checkpoint, run_dir, Path(args.out)))
    log.info("wrote %s (config.json, model.safetensors, README.md) from %s", folder, checkpoint.path)
    return 0
