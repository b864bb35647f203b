"""SVIP's attention rollout: the authors' way (every block's attention kept) vs zslkit's running product.

The authors' source branch (``models/vit_model.py``: ``forward_source_branch`` then
``compute_attention_rollout``) computes every block's attention weights ``(B, heads, T, T)`` with
gradients (their blocks' unfused attention), keeps all of them in a list and multiplies them
afterwards. zslkit (:class:`zslkit.ops.attention_rollout.AttentionRollout`) runs timm's blocks with
fused attention and folds each block's head-mean weights, computed under ``no_grad`` from the
queries and keys, into one ``(B, T, T)`` product. Both are timed as one training forward and
backward of the branch (loss: the sum of the output tokens), interleaved, on the same weights
(the rollouts checked equal first); ``timm`` is the same forward and backward without any rollout.
Peak memory: the profiler's CPU memory timeline (``step_bench.peak_step_memory_mib``), the peak a
step adds above what is allocated before it.

    python benchmarks/svip_rollout.py --official /tmp/svip_official [--batch 8] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import step_bench  # noqa: E402
import svip_parity  # noqa: E402

import zslkit  # noqa: E402
from zslkit.ops.attention_rollout import AttentionRollout  # noqa: E402


def variants(official: Path, shape: dict, batch: int):
    """The three steps on shared weights, and the two rollouts of one batch."""
    torch.manual_seed(0)
    theirs = svip_parity.their_module(official, shape, np.zeros((5, 10))).VisionTransformer(
        **{k: shape[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads")}, num_classes=5)
    options = {} if shape is svip_parity.VIT_B else {k: shape[k] for k in svip_parity.SMALL}
    name = "vit_base_patch16_224" if shape is svip_parity.VIT_B else "vit_tiny_patch16_224"
    backbone = zslkit.create("backbone", "timm_tokens", model_name=name, random_init=True, **options)
    state = {k: v for k, v in theirs.state_dict().items() if k.startswith(("patch_embed.", "blocks.", "norm.", "cls_token", "pos_embed"))}
    backbone.model.load_state_dict(state, strict=False)
    theirs.train(), backbone.train()
    images = torch.randn(batch, 3, shape["img_size"], shape["img_size"], generator=torch.Generator().manual_seed(1))

    def their_step():
        tokens, _, maps = theirs.forward_source_branch(images)
        rollout = theirs.compute_attention_rollout(maps)
        tokens.sum().backward()
        return rollout

    def our_step():
        with AttentionRollout(backbone.model.blocks) as rollout:
            state = backbone(images)
        state.tokens.sum().backward()
        return rollout.product

    def timm_step():
        backbone(images).tokens.sum().backward()

    return {"authors": their_step, "zslkit": our_step, "timm (no rollout)": timm_step}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of uqzhichen/SVIP")
    parser.add_argument("--small", action="store_true", help="the small ViT of svip_parity (a quick check)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = svip_parity.SMALL if args.small else svip_parity.VIT_B
    runs = variants(args.official, shape, args.batch)
    theirs, ours = runs["authors"](), runs["zslkit"]()
    error = float((ours - theirs).abs().max() / theirs.abs().max())
    print(f"rollout (B, T, T) = {tuple(ours.shape)}; max rel. error zslkit vs authors {error:.2e}", file=sys.stderr)
    load_before = os.getloadavg()
    memory = {name: step_bench.peak_step_memory_mib("cpu", step) for name, step in runs.items()}
    times = step_bench.interleaved_times(runs, "cpu", args.steps, 1)
    record = {"shape": shape, "batch": args.batch, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "load_average": [load_before, os.getloadavg()], "rollout_max_rel_error": error,
              "rows": {name: {"median_ms": statistics.median(times[name]), "ms": times[name], "peak_step_mib": memory[name]}
                       for name in runs}}
    print("| variant | median ms/step | peak MiB/step |\n|---|---|---|")
    for name, row in record["rows"].items():
        print(f"| {name} | {row['median_ms']:.0f} | {row['peak_step_mib']:.0f} |")
    print(f"load average before/after: {load_before} / {record['load_average'][1]}; threads {record['threads']}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
