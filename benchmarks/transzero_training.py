"""Short trainings of TransZero / TransZero++: zslkit beside the authors' released code, same data.

Both codes train with the authors' loop (their ``train_cub.py``): ``torch.manual_seed(seed)``, the
model built, then ``ntrain * epochs // batch`` steps of Adam (lr, weight decay 1e-4 on every
parameter) on batches ``torch.randperm(ntrain)[:batch]``; the model in ``train()`` for the step and
``eval()`` for scoring. Both are scored by the same function: the model's class scores (margin
included, no calibration, as their ``eval_zs_gzsl`` with ``bias = 0``) -> T1 / U / S / H.

Rows (``--codes``):

* ``official``: the authors' ``model.py`` / ``model_tzpp.py`` (loaded as in ``transzero_parity.py``);
* ``zslkit``: ``zslkit.create_model(model, ...)`` with its own initialisation;
* ``zslkit_official_init``: zslkit's model on the authors' initial weights (``zslkit.interop``);
* ``zslkit_torch_draws``: that, with masks drawn as ``nn.Dropout`` draws them (checking mode).

    python benchmarks/transzero_training.py --official /tmp/TransZero_pp --model transzero_pp --epochs 4 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transzero_parity import TZ, TZPP, load_official_module, official_losses

import zslkit
from zslkit.attention.dropout import torch_dropout_draws
from zslkit.interop import load_official_transzero, load_official_transzero_pp
from zslkit.metrics import evaluate_scores

CODES = ("official", "zslkit", "zslkit_official_init", "zslkit_torch_draws")


def official_config(args, data, pp: bool):
    import types

    return types.SimpleNamespace(
        dim_f=data.feature_dim, dim_v=data.attribute_embeddings.shape[1], num_class=data.num_classes, tf_common_dim=args.dim,
        tf_dim_feedforward=args.ffn, tf_dropout=args.dropout, tf_SAtt=True, tf_heads=1, tf_ec_layer=1, tf_dc_layer=1,
        tf_aux_embed=True, normalize_V=False, tf_v2s_init="zeros_", weight_s2v=TZPP[-1],
        lambda_=TZPP[0] if pp else TZ[0], lambda_reg=TZPP[1] if pp else TZ[1])


def build(code: str, args, data, module, pp: bool):
    """``(model, step_loss(model, x, y), context)`` for one row; seeds as the authors' script does."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    seen, unseen = torch.as_tensor(data.seen_classes), torch.as_tensor(data.unseen_classes)
    att, w2v = torch.as_tensor(data.class_attributes).float(), torch.as_tensor(data.attribute_embeddings).float()
    if code == "zslkit":
        model = zslkit.create_model(args.model, class_attributes=att, attribute_embeddings=w2v, seen_classes=seen,
                                    unseen_classes=unseen, feature_dim=data.feature_dim, **zslkit_options(args, pp))
        return model, lambda m, x, y: m.loss(m(x), y)["total"], contextlib.nullcontext
    cfg = official_config(args, data, pp)
    official = (module.TransZeroPP if pp else module.TransZero)(cfg, att, w2v, seen, unseen)
    if code == "official":
        return official, lambda m, x, y: official_losses(m, pp, x, y)["total"], contextlib.nullcontext
    loader = load_official_transzero_pp if pp else load_official_transzero
    model = loader(dict(official.state_dict()), dropout=args.dropout)
    context = torch_dropout_draws if code == "zslkit_torch_draws" else contextlib.nullcontext
    return model, lambda m, x, y: m.loss(m(x), y)["total"], context


def zslkit_options(args, pp: bool) -> dict:
    encoder = {"encoder": "geometry_encoder", "dim": args.dim, "ffn_dim": args.ffn, "dropout": args.dropout, "attention_dropout": 0.1}
    decoder = {"heads": 1, "ffn_dim": args.ffn, "dropout": args.dropout, "self_attention": True}
    if not pp:
        return {"encoder": encoder, "branches": {"s2v": {"attention": "attribute_query_decoder", "weight": 1.0, **decoder}}}
    return {"branches": {"s2v": {"attention": "attribute_query_decoder", "weight": 0.9, **decoder, "encoder": encoder},
                         "v2s": {"attention": "region_query_decoder", "weight": 0.1, **decoder, "encoder": encoder, "score_init": "zeros"}}}


def scores(model, features: torch.Tensor, official: bool) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [model(features[i:i + 100]) for i in range(0, len(features), 100)]
    return torch.cat([o["S_pp"] if official else o.scores for o in out]).numpy()


def run(code: str, args, data, module, pp: bool) -> dict[int, dict[str, float]]:
    """``{epoch: metrics}`` at each of ``args.epochs`` (one training, scored on the way)."""
    model, step_loss, context = build(code, args, data, module, pp)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    train = data.splits["trainval"]
    features, labels = torch.as_tensor(data.features[train]), torch.as_tensor(data.labels[train]).long()
    torch.manual_seed(args.seed)  # the same batches (and torch masks) whatever the build drew
    results, steps_per_epoch = {}, len(train) / args.batch
    for step in range(1, int(len(train) * max(args.epochs) // args.batch) + 1):
        model.train()
        optimizer.zero_grad()
        idx = torch.randperm(len(train))[: args.batch]
        with context():
            loss = step_loss(model, features[idx], labels[idx])
        loss.backward()
        optimizer.step()
        for epoch in args.epochs:
            if step == int(epoch * steps_per_epoch):
                results[epoch] = evaluate(model, data, code == "official")
    return results


def evaluate(model, data, official: bool) -> dict[str, float]:
    test = [torch.as_tensor(data.features[data.splits[s]]) for s in ("test_seen", "test_unseen")]
    return evaluate_scores(data, scores(model, test[0], official), scores(model, test[1], official), calibration=0.0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="the authors' checkout (model.py or model_tzpp.py)")
    parser.add_argument("--model", choices=("transzero", "transzero_pp"), default="transzero_pp")
    parser.add_argument("--codes", nargs="+", choices=CODES, default=list(CODES))
    parser.add_argument("--epochs", type=int, nargs="+", default=[4, 10], help="score after these epochs (one training)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--ffn", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--dataset-seed", type=int, default=0)
    parser.add_argument("--images-per-class", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pp = args.model == "transzero_pp"
    data = zslkit.load_dataset("synthetic", seed=args.dataset_seed, images_per_class=args.images_per_class)
    source = Path(args.official) / ("model_tzpp.py" if pp else "model.py")
    module = load_official_module(source, tuple(data.feature_shape[1:]), data.feature_dim, data.attribute_embeddings.shape[1])
    print("code\tseed\tepochs\tT1\tU\tS\tH\tAUSUC\tseconds")
    rows: dict[tuple[str, int], list] = {}
    for code in args.codes:
        for seed in args.seeds:
            args.seed = seed
            start = time.perf_counter()
            for epoch, m in run(code, args, data, module, pp).items():
                values = [m[k] for k in ("T1", "U", "S", "H", "AUSUC")]
                rows.setdefault((code, epoch), []).append(values)
                cells = "\t".join(f"{v:.3f}" for v in values)
                print(f"{code}\t{seed}\t{epoch}\t{cells}\t{time.perf_counter() - start:.0f}", flush=True)
    for (code, epoch), values in rows.items():
        v = np.array(values)
        cells = "\t".join(f"{mu:.3f}+-{sd:.3f}" for mu, sd in zip(v.mean(0), v.std(0)))
        print(f"mean+-sd\t{code}\t{epoch} epochs, {len(values)} seeds\t{cells}", file=sys.stdout)


if __name__ == "__main__":
    main()
