"""Parity of zslkit's ZSLViT with the authors' released code (github.com/shiming-chen/ZSLViT), on the same weights.

Needs a checkout of their repository, or the bare git directory of one (``--official``); their
``zslvit.py`` is run from it with one patch made in memory: its ``from helpers import complement_idx``
is served by a module holding only that function of their ``helpers.py`` (the rest of ``helpers.py``
imports ``torchprofile``, which the measurement does not need). Nothing of theirs is copied into zslkit.

Their ``ZSLViT`` is built with its own random initialisation, saved in their layout
(``{"vit": ..., "mlp_g": ...}``) and read into zslkit by :func:`zslkit.models.zslvit_official.load_official_zslvit`.
Printed (results on stdout, one JSON object):

* ``scores``: one eval forward of a DeiT-B/16 at 224 px with their CUB shapes (312 attributes, pruning at
  blocks 3, 6, 9), float32: the largest relative error of the class scores ``mlp_g(cls) @ A^T``;
* ``loss``: one training forward (injection on, labels given) of a small DeiT of the same structure, float32:
  relative error of the total loss ``CE + sum L1(aux, cls) + sum L1(reg(q_cls), A[y])`` (their ``train``);
* ``steps``: the same small model, ``--steps`` steps of their optimizer (Adam; the ViT and injection MLPs at lr
  1e-5, weight decay 1e-4; ``mlp_g`` at 5e-3, 1e-5) on both, in float64 (near-tied top-k choices of the
  kept tokens would otherwise flip on rounding differences): the largest relative error of every weight; the same
  in float32 is printed for information (``_info``), not checked.

    python benchmarks/zslvit_parity.py --official /work/.mirror/shiming-chen+ZSLViT/repo
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import subprocess
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from zslkit.models.zslvit_official import load_official_zslvit

LOG = logging.getLogger("zslvit_parity")


def read_source(official: Path, name: str) -> str:
    """``name`` from a checkout, or from the HEAD of a bare git directory."""
    if (official / name).is_file():
        return (official / name).read_text()
    return subprocess.run(["git", "--git-dir", str(official), "show", f"HEAD:{name}"], check=True, capture_output=True,
                          text=True).stdout


def load_official_module(official: Path) -> types.ModuleType:
    """Their ``zslvit.py`` as a module, its ``helpers`` import served by ``complement_idx`` alone."""
    helpers_source = read_source(official, "helpers.py")
    tree = ast.parse(helpers_source)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "complement_idx")
    helpers = types.ModuleType("helpers")
    code = "import torch\n" + ast.get_source_segment(helpers_source, function)
    exec(compile(code, "helpers.py", "exec"), helpers.__dict__)  # noqa: S102
    sys.modules["helpers"] = helpers
    module = types.ModuleType("zslvit_official_code")
    source = read_source(official, "zslvit.py").replace("@register_model\n", "")  # not into timm's registry
    exec(compile(source, "zslvit.py", "exec"), module.__dict__)  # noqa: S102 (the user's checkout, run beside ours)
    return module


def build_pair(official, *, blocks, attributes, seen, depth, dim, heads, size, dataset, dtype, seed=0):
    """(theirs: ModuleDict vit + mlp_g, ours: zslkit ZSLViT) on the same weights."""
    keep_rate = [1] * depth
    for block in blocks:
        keep_rate[block] = 0.9
    torch.manual_seed(seed)
    vit = official.ZSLViT(img_size=size, patch_size=16, embed_dim=dim, depth=depth, num_heads=heads, keep_rate=keep_rate,
                          fuse_token=True, dataset=dataset, drop_path_rate=0.0)
    theirs = torch.nn.ModuleDict({"vit": vit, "mlp_g": torch.nn.Linear(dim, attributes.shape[1], bias=True)})
    theirs["mlp_g"].bias.data.normal_()  # off zero, so a lost bias shows
    state = {k: v.clone() for k, v in theirs.state_dict().items()}
    small = {"depth": depth, "embed_dim": dim, "num_heads": heads, "drop_path_rate": 0.0}
    ours = load_official_zslvit(state, attributes, seen, blocks=blocks, backbone_options=small)
    return theirs.to(dtype), ours.to(dtype)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def their_loss(theirs, images, labels, seen_attributes):
    """Their ``train_function.train`` loss for one batch (labels among the seen classes, from 0)."""
    x_g, _, aux, reg = theirs["vit"](images, 0.9, label=labels, att=seen_attributes)
    logits = theirs["mlp_g"](x_g) @ seen_attributes.T
    target = seen_attributes[labels]
    return (F.cross_entropy(logits, labels) + sum(F.l1_loss(a, x_g) for a in aux[:3])
            + sum(F.l1_loss(r, target) for r in reg[:3]))


def scores_check(official) -> float:
    """One eval forward of a DeiT-B/16 at 224 px, CUB's shapes: relative error of the class scores."""
    torch.manual_seed(1)
    attributes, seen = torch.rand(200, 312), torch.arange(150)
    theirs, ours = build_pair(official, blocks=(3, 6, 9), attributes=attributes, seen=seen, depth=12, dim=768, heads=12,
                              size=224, dataset="CUB", dtype=torch.float32)
    theirs.eval(), ours.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        keep = tuple(0.9 if i in (3, 6, 9) else 1 for i in range(12))
        expected = theirs["mlp_g"](theirs["vit"](images, keep_rate=keep)[0]) @ attributes.T
        got = ours(images).branch_scores["global"]
    return relative(got, expected)


def small_pair(official, dtype):
    torch.manual_seed(2)
    attributes, seen = torch.rand(12, 85), torch.tensor([0, 1, 2, 3, 5, 6, 8, 9])
    theirs, ours = build_pair(official, blocks=(1, 2, 3), attributes=attributes, seen=seen, depth=5, dim=48, heads=3,
                              size=64, dataset=None, dtype=dtype)
    return theirs, ours, attributes.to(dtype), seen


def loss_check(official) -> float:
    """One training forward in float32: relative error of the total loss."""
    theirs, ours, attributes, seen = small_pair(official, torch.float32)
    theirs.train(), ours.train()
    images, position = torch.randn(4, 3, 64, 64), torch.tensor([0, 3, 5, 7])
    expected = their_loss(theirs, images, position, attributes[seen])
    got = ours.loss(ours(images, seen[position]), seen[position])["total"]
    return relative(got, expected.detach())


def steps_check(official, steps: int, dtype: torch.dtype) -> float:
    """``steps`` steps of their Adam on both in ``dtype``: the largest relative error of a weight."""
    theirs, ours, attributes, seen = small_pair(official, dtype)
    theirs.train(), ours.train()
    theirs_opt = torch.optim.Adam([{"params": theirs["vit"].parameters(), "lr": 1e-5, "weight_decay": 1e-4},
                                   {"params": theirs["mlp_g"].parameters(), "lr": 5e-3, "weight_decay": 1e-5}])
    head = list(ours.branches.parameters())
    rest = [p for p in ours.parameters() if p.requires_grad and all(p is not h for h in head)]
    ours_opt = torch.optim.Adam([{"params": rest, "lr": 1e-5, "weight_decay": 1e-4},
                                 {"params": head, "lr": 5e-3, "weight_decay": 1e-5}])
    generator = torch.Generator().manual_seed(3)
    for _ in range(steps):
        images = torch.randn(4, 3, 64, 64, generator=generator, dtype=torch.float64).to(dtype)
        position = torch.randint(0, len(seen), (4,), generator=generator)
        theirs_opt.zero_grad(), ours_opt.zero_grad()
        their_loss(theirs, images, position, attributes[seen]).backward()
        ours.loss(ours(images, seen[position]), seen[position])["total"].backward()
        theirs_opt.step(), ours_opt.step()
    from zslkit.models.zslvit_official import official_zslvit_keys

    mapped = official_zslvit_keys(theirs.state_dict(), (1, 2, 3))
    own = ours.state_dict()
    return max(relative(own[key], value) for key, value in mapped.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="their checkout, or its bare git directory")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    official = load_official_module(args.official)
    result = {"scores_rel_fp32_deit_b_224": scores_check(official), "loss_rel_fp32": loss_check(official),
              f"weights_rel_after_{args.steps}_adam_steps_fp64": steps_check(official, args.steps, torch.float64),
              f"weights_rel_after_{args.steps}_adam_steps_fp32_info": steps_check(official, args.steps, torch.float32)}
    result["within"] = {"scores": result["scores_rel_fp32_deit_b_224"] <= 1e-5, "loss": result["loss_rel_fp32"] <= 1e-5,
                        "steps": result[f"weights_rel_after_{args.steps}_adam_steps_fp64"] <= 1e-3}
    print(json.dumps(result, indent=1))
    return 0 if all(result["within"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
