"""Parity of zslkit's ``psvma`` with the authors' released PSVMA code on the same random-init weights.

Needs a checkout of ``ManLiuCoder/PSVMA``. Their ``models/modeling/PSVMAModel/PSVMANet.py`` and
``models/modeling/backbone_vit/vit_model.py`` are run from that path with textual patches made in
memory: the unused ``matplotlib`` import and the dataset helpers (``models.modeling.utils``, the
weights file of ``build_PSVMANet``) left out, the token mixer's hard-coded 196 patches taken
from a module variable, and ``attn *= self.scale`` written out of place (newer PyTorch refuses the
backward of an in-place change of a ReLU's output; the values are the same). Nothing of theirs is copied into zslkit.

Their model is built with its own random init (LayerNorm weights moved off (1, 0) so that one
norm cannot stand for another), its state dict converted by :func:`zslkit.models.psvma_official.load_official_psvma`,
and both run on the same images: the eval scores over all classes, the training loss
``LAMBDA1 Lcls + LAMBDA2 Lreg + LAMBDA3 Lbias`` and each term, then ``--steps`` steps of their
optimizer (SGD, lr 1e-3, momentum 0.9, weight decay 1e-4) on both, new images every step.
Printed: the largest relative errors. ``--base`` adds one eval forward and training loss of a
ViT-B/16 at 224 px at CUB's shapes (312 attributes, 150 + 50 classes, 28 groups).

    python benchmarks/psvma_parity.py --official /tmp/PSVMA [--base] [--float64]
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

from zslkit.models.psvma_official import load_official_psvma

LAMBDAS = (1.0, 0.5, 0.001)  # CUB: LAMBDA1 (CE), LAMBDA2 (attention MSE), LAMBDA3 (debias)


def _exec(path: Path, name: str, source: str, **variables) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(variables)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 (the user's checkout, run beside ours)
    return module


def load_official(root: Path, num_patches: int) -> tuple[types.ModuleType, types.ModuleType]:
    """(their vit_model module, their PSVMANet module) made runnable on the CPU for ``num_patches`` tokens."""
    vit_path = root / "models/modeling/backbone_vit/vit_model.py"
    vit = _exec(vit_path, "vit_model", vit_path.read_text())
    net_path = root / "models/modeling/PSVMAModel/PSVMANet.py"
    source = net_path.read_text()
    for line in ("from matplotlib.cbook import flatten", "from models.modeling import utils",
                 "from models.modeling.backbone_vit.vit_model import vit_base_patch16_224 as create_model"):
        if line not in source:
            raise SystemExit(f"{net_path}: expected the line {line!r}; another version of their code?")
        source = source.replace(line, "")
    source = source.replace("dim =196", "dim = NUM_PATCHES")
    # PyTorch >= 1.8 keeps ReLU's output for its backward: scaling it in place (their PyTorch 1.7 allowed it) would
    # make backward fail; the out-of-place product has the same values
    source = source.replace("attn *= self.scale", "attn = attn * self.scale")
    return vit, _exec(net_path, "PSVMANet", source, NUM_PATCHES=num_patches)


def build_pair(root: Path, *, width: int, depth: int, heads: int, attributes: int, seen: int, unseen: int, groups: int,
               seed: int = 0, dtype=torch.float32):
    """Their PSVMANet (random init) and zslkit's psvma converted from its state dict, and the class data."""
    vit_module, net_module = load_official(root, 196)
    torch.manual_seed(seed)
    vit = vit_module.VisionTransformer(img_size=224, patch_size=16, embed_dim=width, depth=depth, num_heads=heads,
                                       num_classes=-1)
    w2v = np.random.default_rng(seed).normal(size=(attributes, 300)).astype(np.float32)
    theirs = net_module.PSVMANet(basenet=vit, c=width, attritube_num=attributes, cls_num=seen + unseen, ucls_num=unseen,
                                 group_num=groups, w2v=w2v, scale=25.0)
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            if "norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    att = torch.rand(seen + unseen, attributes)
    losses = {"attribute_ce": {"branches": ["base"], "classes": "seen", "weight": LAMBDAS[0]},
              "attention_regression": {"keys": ["first_scores", "scores"], "weight": LAMBDAS[1]},
              "debias": {"branches": ["base"], "reference": "unseen", "weight": LAMBDAS[2]}}
    ours = load_official_psvma(theirs.state_dict(), class_attributes=att, attribute_embeddings=w2v,
                               seen_classes=list(range(seen)), unseen_classes=list(range(seen, seen + unseen)),
                               num_heads=heads, losses=losses)
    theirs.w2v_att = theirs.w2v_att.to(dtype)
    return theirs.to(dtype), ours.to(dtype), att.to(dtype)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest error relative to the reference's largest magnitude."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def their_loss(theirs, images, labels, att, seen):
    terms = theirs(x=images, att=att[labels], label=labels, seen_att=att[:seen], att_all=att)
    total = LAMBDAS[0] * terms["Cls_loss"] + LAMBDAS[1] * terms["Reg_loss"] + LAMBDAS[2] * terms["bias_loss"]
    return total, terms


def compare_forward(theirs, ours, att, seen, images, labels) -> dict[str, float]:
    theirs.eval(), ours.eval()
    with torch.no_grad():
        scores = rel(ours(images).scores, theirs(images, seen_att=att, att_all=att))
    theirs.train(), ours.train()
    with torch.no_grad():
        total, terms = their_loss(theirs, images, labels, att, seen)
        mine = ours.loss(ours(images, labels), labels)
    return {"scores": scores, "total loss": rel(mine["total"], total), "CE": rel(mine["attribute_ce"], terms["Cls_loss"]),
            "attention MSE": rel(mine["attention_regression"], terms["Reg_loss"]), "debias": rel(mine["debias"], terms["bias_loss"])}


def steps(theirs, ours, att, seen, count: int, batch: int, dtype) -> dict[str, float]:
    """``count`` SGD steps on both (new images each); the largest relative loss error over the steps and the
    largest relative error of any parameter afterwards (mapped by shape and order is not needed: by value)."""
    options = {"lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4}
    opt_theirs = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], **options)
    opt_ours = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], **options)
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    theirs.train(), ours.train()
    for _ in range(count):
        images = torch.randn(batch, 3, 224, 224, generator=generator, dtype=dtype)
        labels = torch.randint(0, seen, (batch,), generator=generator)
        total, _ = their_loss(theirs, images, labels, att, seen)
        mine = ours.loss(ours(images, labels), labels)["total"]
        worst = max(worst, rel(mine, total))
        for optimizer, loss in ((opt_theirs, total), (opt_ours, mine)):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    images = torch.randn(batch, 3, 224, 224, generator=generator, dtype=dtype)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        after = rel(ours(images).scores, theirs(images, seen_att=att, att_all=att))
    weights = rel(ours.adapters.by_entry["dsvtm"].W, theirs.W)
    blocks = max(rel(a, b) for a, b in zip(ours.backbone.model.blocks.parameters(),
                                            [*theirs.backbone_0.parameters(), *theirs.backbone_1.parameters()]))
    return {"loss over the steps": worst, "scores after": after, "W after": weights, "ViT blocks after": blocks,
            "V after": rel(ours.branches["base"].V, theirs.V)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of ManLiuCoder/PSVMA")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--base", action="store_true", help="also one ViT-B/16 forward at CUB's shapes")
    parser.add_argument("--float64", action="store_true", help="run both in float64")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.float64 else torch.float32
    small = {"width": 64, "depth": 3, "heads": 2, "attributes": 24, "seen": 6, "unseen": 4, "groups": 4}
    theirs, ours, att = build_pair(args.official, **small, dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(4, 3, 224, 224, generator=generator, dtype=dtype), torch.tensor([0, 3, 5, 3])
    print(f"small ViT {small}, 224 px, batch 4, {dtype}")
    for name, value in {**compare_forward(theirs, ours, att, 6, images, labels),
                        **steps(theirs, ours, att, 6, args.steps, 4, dtype)}.items():
        print(f"  {name:22s} max relative error {value:.2e}")
    if args.base:
        cub = {"width": 768, "depth": 12, "heads": 12, "attributes": 312, "seen": 150, "unseen": 50, "groups": 28}
        theirs, ours, att = build_pair(args.official, **cub, dtype=dtype)
        images = torch.randn(2, 3, 224, 224, generator=generator, dtype=dtype)
        print(f"ViT-B/16, 224 px, CUB shapes, batch 2, {dtype}")
        for name, value in compare_forward(theirs, ours, att, 150, images, torch.tensor([7, 120])).items():
            print(f"  {name:22s} max relative error {value:.2e}")


if __name__ == "__main__":
    sys.exit(main())
