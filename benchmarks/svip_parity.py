"""Parity of zslkit's ``svip`` with the authors' SVIP code on the same weights.

Needs a checkout of ``uqzhichen/SVIP``. Their ``models/vit_model.py`` is loaded from it with
textual patches made in memory: ``.cuda()`` removed, the word-vector pickle replaced by an array
given here, and, for the small ViT, the hard-coded ViT-B/16 shapes (768 channels, 14 x 14 patches
in a 7 x 7 grid of 2 x 2 groups) set to the small model's. Their loss and optimizer step are
their ``main.py`` ``train_model`` (read from the file, ``.cuda()`` removed, one line added that
records the loss terms), run on a loader of ``--steps`` batches with Adam on every parameter
(their fine-tuning epochs), gradient clipping at 1 included. Nothing of theirs is copied into zslkit.

Their random init builds the weights; :func:`zslkit.models.svip_official.load_official_svip`
converts them. Printed: the largest relative error of the source and target attribute scores,
the selector's probabilities and targets, every loss term and the total, and after ``--steps``
Adam steps the loss of every step and every parameter (max |theirs - ours| / max |theirs| per tensor).

    python benchmarks/svip_parity.py --official /tmp/svip_official [--vit-b] [--float64]
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import types
from pathlib import Path

import numpy as np
import torch

from zslkit.models.svip_official import load_official_svip, svip_key

#: The CUB script's loss settings (scripts/CUB_train.sh).
ARGS = {"mse": 0.0, "patch_cls": 3.0, "kl_t": 20.0, "kl": 1.0, "ce_source": 1.0, "ce_target": 1.0, "scale": 5.0,
        "att_dec": 0.3, "log_interval": 10**9}
SMALL = {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 3, "num_heads": 2}
VIT_B = {"img_size": 224, "patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12}


def their_module(root: Path, shape: dict, w2v: np.ndarray) -> types.ModuleType:
    """``models/vit_model.py`` with the patches of the module docstring."""
    text = (root / "models" / "vit_model.py").read_text()
    text = text.replace(".cuda()", "")
    text = re.sub(r"w2v_file = .*?pickle\.load\(f\)", "w2v = _W2V", text, flags=re.S)
    text = text.replace("torch.from_numpy(w2v).float()", "torch.from_numpy(w2v).to(torch.get_default_dtype())")
    dim, grid = shape["embed_dim"], shape["img_size"] // shape["patch_size"]
    groups = grid // 2
    for old, new in (("3072", 4 * dim), ("768", dim), ("196", grid * grid), ("49", groups * groups)):
        text = re.sub(rf"\b{old}\b", str(new), text)
    text = text.replace("7, 2, 7, 2", f"{groups}, 2, {groups}, 2").replace("7, 7", f"{groups}, {groups}")
    module = types.ModuleType("svip_vit_model")
    module.__dict__["_W2V"] = w2v
    exec(compile(text, str(root / "models" / "vit_model.py"), "exec"), module.__dict__)  # noqa: S102 - their code, patched
    return module


def their_train_model(root: Path, record: list) -> types.FunctionType:
    """``main.py``'s ``train_model``, ``.cuda()`` removed, recording the loss terms of every step."""
    source = (root / "main.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "train_model")
    text = ast.get_source_segment(source, node).replace(".cuda()", "")
    anchor = "        optimizer.zero_grad()\n"
    text = text.replace(anchor, "        _RECORD.append(dict(bce=bce_loss, kl=kl_loss, ce=ce_loss, att=loss_att, total=loss))\n" + anchor)
    sys.path.insert(0, str(root))
    import vit_utils  # their helpers (AverageMeter, time_string)

    namespace = {"torch": torch, "F": torch.nn.functional, "time": __import__("time"), "_RECORD": record,
                 "AverageMeter": vit_utils.AverageMeter, "time_string": vit_utils.time_string}
    exec(compile(text, str(root / "main.py"), "exec"), namespace)  # noqa: S102
    return namespace["train_model"]


class _Loader(list):
    """A list of batches with the dataset methods their ``train_model`` calls."""

    class dataset:  # noqa: N801
        set_return_label_mode = set_return_img_mode = staticmethod(lambda mode: None)


class _Logger:
    def print(self, *args, **kwargs):
        pass


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of uqzhichen/SVIP")
    parser.add_argument("--vit-b", action="store_true", help="ViT-B/16 at 224 px (one forward; slow on a CPU)")
    parser.add_argument("--float64", action="store_true", help="run both codes in float64")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args(argv)
    dtype = torch.float64 if args.float64 else torch.float32
    torch.set_default_dtype(dtype)
    shape = VIT_B if args.vit_b else SMALL
    grid = shape["img_size"] // shape["patch_size"]
    groups = (grid // 2) ** 2
    keep = 40 if args.vit_b else 10
    rng = np.random.default_rng(0)
    num_classes, num_attributes, seen = 8, 12, np.arange(5)
    attributes = rng.random((num_classes, num_attributes)).astype(np.float32)
    w2v = rng.normal(size=(num_attributes, 10)).astype(np.float32).astype(np.float64)  # float32 values (zslkit stores V so)
    groups_of = {"a": list(range(0, 5)), "b": list(range(5, 9)), "c": list(range(9, 12))}

    torch.manual_seed(0)
    theirs = their_module(args.official, shape, w2v).VisionTransformer(
        **{k: shape[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads")}, representation_size=None,
        num_classes=num_attributes, keep_token=keep, pool="mean", sim_score="attn_rollout")
    theirs.float().to(dtype)  # float32 values in float64 too: the converter reads float32
    timm_model = "vit_base_patch16_224" if args.vit_b else "vit_tiny_patch16_224"
    backbone_options = {} if args.vit_b else {k: shape[k] for k in SMALL}
    ours = load_official_svip({k: v.clone() for k, v in theirs.state_dict().items()}, attributes, w2v, seen,
                              attribute_groups=groups_of, timm_model=timm_model, keep=keep,
                              backbone_options=backbone_options).to(dtype)
    ours.set_loss_weights({"att_dec": ARGS["att_dec"] ** 2})
    theirs.train(), ours.train()

    features = torch.as_tensor(attributes, dtype=dtype)
    features = features / (features.norm(dim=1, keepdim=True) + 1e-5)
    semantics = features[torch.as_tensor(seen)]
    batches = []
    for step in range(args.steps):
        images = torch.randn(args.batch, 3, shape["img_size"], shape["img_size"], generator=torch.Generator().manual_seed(step))
        labels = torch.as_tensor(rng.integers(0, len(seen), args.batch))
        batches.append((images.to(dtype), labels, None))

    # one forward, each output and loss term
    images, labels, _ = batches[0]
    source, target, their_targets, their_probs = theirs(images)
    output = ours(images, labels)
    terms = ours.loss(output, labels)
    print(f"{'ViT-B/16 224 px' if args.vit_b else 'small ViT'}, {dtype}, batch {args.batch}, {groups} groups, keep {keep}")
    print(f"source scores        {rel(output.attribute_scores['source'], source):.2e}")
    print(f"target scores        {rel(output.attribute_scores['target'], target):.2e}")
    print(f"selector p           {rel(output.extras['selector']['probabilities'], their_probs):.2e}")
    print(f"selector targets     {rel(output.extras['selector']['targets'], their_targets):.2e}")

    record: list = []
    train_model = their_train_model(args.official, record)
    namespace = argparse.Namespace(**ARGS, att_group={k: v for k, v in groups_of.items()})
    optimizer = torch.optim.Adam(theirs.parameters(), lr=args.lr, betas=(0.5, 0.999))
    train_model(namespace, _Loader(batches), semantics, None, theirs, optimizer, _Logger(), "000/001", 0)
    first = record[0]
    mine = {"bce": terms["patch_cls"], "kl": terms["kl"], "ce": terms["ce_source"] + terms["ce_target"],
            "att": terms["att_dec"] * ARGS["att_dec"], "total": terms["total"]}
    for key in ("ce", "kl", "bce", "att", "total"):
        print(f"loss {key:<15} {rel(mine[key].detach(), first[key].detach()):.2e}   ({float(first[key]):.6f})")

    params = [p for p in ours.parameters() if p.requires_grad]
    adam = torch.optim.Adam(params, lr=args.lr, betas=(0.5, 0.999))
    totals = []
    for images, labels, _ in batches:
        loss = ours.loss(ours(images, labels), labels)["total"]
        adam.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1)
        adam.step()
        totals.append(loss.detach())
    print("step losses (theirs / rel. error): " + ", ".join(
        f"{float(r['total']):.5f}/{rel(t, r['total'].detach()):.1e}" for r, t in zip(record, totals)))
    own = ours.state_dict()
    errors = {key: rel(own[svip_key(key)], value) for key, value in theirs.state_dict().items() if svip_key(key)}
    worst = max(errors, key=errors.get)
    print(f"after {args.steps} steps: largest parameter error {errors[worst]:.2e} ({worst}); "
          f"median {float(np.median(list(errors.values()))):.2e} over {len(errors)} tensors")


if __name__ == "__main__":
    main()
