"""A training step of zslkit's ``svip`` at CUB shapes beside the authors' code and beside the step's matmul floor.

Shapes: ViT-B/16 at 224 px, batch 8 (CPU), 312 attributes, 150 seen classes, 40 of 49 groups kept.
``authors``: their ``VisionTransformer`` and their ``main.py`` ``train_model`` on one batch (forward,
loss, backward, gradient clipping at 1, Adam on every parameter: their fine-tuning epochs), loaded
from a checkout as in ``svip_parity.py``. ``zslkit``: the same weights through
``load_official_svip`` (its first loss checked equal to theirs first), the same optimizer step.
``matmul floor``: the step's matrix products alone, on random tensors of the step's shapes, in the
same run: for each of the two ViT passes every linear layer's forward product and its two backward
products (the patch projection as one), the attention's two batched products forward and four
backward per block, and the heads' (``head_1`` on the kept groups, the selector's first layer).

Times: median ms per step over interleaved rounds. Memory: the profiler's CPU memory timeline of
one step after a warm-up step (``step_bench.peak_step_memory_mib``: the tensor peak the step adds),
and the peak RSS one step of each variant adds after a warm-up step, in a fresh process run with
``MALLOC_MMAP_THRESHOLD_=131072`` (freed tensors go back to the system at once; ``--rss VARIANT``
prints it alone; Adam's state exists before, as in training). ``--no-memory``: times only.

    python benchmarks/svip_step.py --official /tmp/svip_official [--batch 8] [--steps 3] [--json OUT]
        [--recompute-mlp-blocks SOURCE,TARGET]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import step_bench  # noqa: E402
import svip_parity  # noqa: E402

from zslkit.models.svip_official import load_official_svip  # noqa: E402

NUM_CLASSES, NUM_SEEN, NUM_ATTRIBUTES, KEEP = 200, 150, 312, 40


def setup(official: Path, batch: int, seed: int = 0, recompute_mlp_blocks: list[int] | None = None):
    """``{"authors": step, "zslkit": step}`` on the same weights and batch, and the first losses of both;
    ``recompute_mlp_blocks``: zslkit's ``[source, target]`` counts instead of svip's default."""
    rng = np.random.default_rng(seed)
    attributes = rng.random((NUM_CLASSES, NUM_ATTRIBUTES)).astype(np.float32)
    w2v = rng.normal(size=(NUM_ATTRIBUTES, 300)).astype(np.float32).astype(np.float64)
    groups = {str(g): list(range(g * 12, (g + 1) * 12)) for g in range(26)}  # 26 groups of 12: CUB's count of 312
    torch.manual_seed(seed)
    shape = svip_parity.VIT_B
    theirs = svip_parity.their_module(official, shape, w2v).VisionTransformer(
        **{k: shape[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads")}, num_classes=NUM_ATTRIBUTES,
        keep_token=KEEP, pool="mean", sim_score="attn_rollout")
    counts = {} if recompute_mlp_blocks is None else {"recompute_mlp_blocks": recompute_mlp_blocks}
    ours = load_official_svip({k: v.clone() for k, v in theirs.state_dict().items()}, attributes, w2v, np.arange(NUM_SEEN),
                              attribute_groups=groups, keep=KEEP, **counts)
    ours.set_loss_weights({"att_dec": svip_parity.ARGS["att_dec"] ** 2})
    theirs.train(), ours.train()
    images = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    labels = torch.as_tensor(rng.integers(0, NUM_SEEN, batch))
    features = torch.as_tensor(attributes)
    semantics = (features / (features.norm(dim=1, keepdim=True) + 1e-5))[:NUM_SEEN]
    record: list = []
    train_model = svip_parity.their_train_model(official, record)
    args = argparse.Namespace(**svip_parity.ARGS, att_group=groups)
    their_adam = torch.optim.Adam(theirs.parameters(), lr=3e-5, betas=(0.5, 0.999))
    params = [p for p in ours.parameters() if p.requires_grad]
    our_adam = torch.optim.Adam(params, lr=3e-5, betas=(0.5, 0.999))
    losses: dict = {}

    def their_step():
        train_model(args, svip_parity._Loader([(images, labels, None)]), semantics, None, theirs, their_adam,
                    svip_parity._Logger(), "000/001", 0)
        losses.setdefault("authors", float(record[-1]["total"]))

    def our_step():
        loss = ours.loss(ours(images, labels), labels)["total"]
        our_adam.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1)
        our_adam.step()
        losses.setdefault("zslkit", float(loss))

    return {"authors": their_step, "zslkit": our_step}, losses


def floor_step(batch: int):
    """The step's matrix products alone (module docstring), on preallocated random tensors."""
    d, heads, tokens, groups = 768, 12, 197, 49
    rows = batch * tokens
    linears = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] * 12 + [(d, d)]  # 12 blocks and the patch projection
    heads_ = [(batch * KEEP, 4 * d, NUM_ATTRIBUTES), (batch * groups, 4 * d, 512)]
    gen = torch.Generator().manual_seed(0)
    mats = {}
    for k, n in set(linears):
        mats[(k, n)] = (torch.randn(rows, k, generator=gen), torch.randn(k, n, generator=gen), torch.randn(rows, n, generator=gen))
    head_mats = [(torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen), torch.randn(m, n, generator=gen))
                 for m, k, n in heads_]
    q = torch.randn(batch * heads, tokens, d // heads, generator=gen)
    a = torch.randn(batch * heads, tokens, tokens, generator=gen)

    def step():
        for _ in range(2):  # the source and the target pass
            for k, n in linears:
                x, w, g = mats[(k, n)]
                x @ w, g @ w.T, x.T @ g  # forward, input gradient, weight gradient
            for _ in range(12):
                torch.bmm(q, q.transpose(1, 2)), torch.bmm(a, q)  # q k^T, a v
                torch.bmm(a, q), torch.bmm(a.transpose(1, 2), q), torch.bmm(a, q), torch.bmm(a.transpose(1, 2), q)
        for x, w, g in head_mats:
            x @ w, g @ w.T, x.T @ g

    return step


def peak_rss_added(official: Path, variant: str, batch: int, recompute_mlp_blocks: list[int] | None = None) -> float:
    """MiB of peak RSS one step of ``variant`` adds in this fresh process, after a warm-up step (Adam's state exists):
    Linux's ``VmHWM`` reset through ``/proc/self/clear_refs`` after ``malloc_trim``, minus ``VmRSS`` then."""
    runs, _ = setup(official, batch, recompute_mlp_blocks=recompute_mlp_blocks)
    step = runs[variant] if variant != "floor" else floor_step(batch)
    step()
    return step_bench.peak_rss_added_kib(step) / 1024


def _counts(text: str) -> list[int]:
    """``"3,2"`` -> ``[3, 2]``; one number applies to both passes."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"give block counts as SOURCE,TARGET (e.g. 3,2) or one number, got {text!r}") from None
    if len(counts) not in (1, 2) or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"give two block counts SOURCE,TARGET (e.g. 3,2) or one, each >= 0, got {text!r}")
    return counts * 2 if len(counts) == 1 else counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of uqzhichen/SVIP")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--rss", default=None, help=argparse.SUPPRESS)  # internal: one variant's peak RSS
    parser.add_argument("--no-memory", action="store_true", help="times only (no profiler timeline, no RSS runs)")
    parser.add_argument("--recompute-mlp-blocks", type=_counts, default=None, metavar="SOURCE,TARGET",
                        help="zslkit's recompute_mlp_blocks for its two passes (default: svip's own, 3,2)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss:
        print(json.dumps(peak_rss_added(args.official, args.rss, args.batch, args.recompute_mlp_blocks)))
        return
    runs, losses = setup(args.official, args.batch, recompute_mlp_blocks=args.recompute_mlp_blocks)
    runs["matmul floor"] = floor_step(args.batch)
    load_before = os.getloadavg()
    times = step_bench.interleaved_times(runs, "cpu", args.steps, 1)  # the warm-up round checks the losses too
    error = abs(losses["zslkit"] - losses["authors"]) / abs(losses["authors"])
    print(f"first loss: authors {losses['authors']:.6f}, zslkit {losses['zslkit']:.6f}, rel. error {error:.1e}", file=sys.stderr)
    memory = {} if args.no_memory else {name: step_bench.peak_step_memory_mib("cpu", step) for name, step in runs.items()}
    load_after = os.getloadavg()
    rss = {}
    for name in () if args.no_memory else ("authors", "zslkit"):
        command = [sys.executable, __file__, "--official", str(args.official), "--batch", str(args.batch), "--rss", name,
                   "--threads", str(torch.get_num_threads())]
        if args.recompute_mlp_blocks is not None:
            command += ["--recompute-mlp-blocks", ",".join(map(str, args.recompute_mlp_blocks))]
        env = {**os.environ, **step_bench.RSS_ENV}  # large tensors go back to the system when freed
        rss[name] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                              env=env).stdout.strip().splitlines()[-1])
    median = {name: statistics.median(t) for name, t in times.items()}
    record = {"batch": args.batch, "recompute_mlp_blocks": args.recompute_mlp_blocks or "default",
              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "load_average": [load_before, load_after], "first_loss_rel_error": error, "ms": times,
              "median_ms": median, "peak_step_mib": memory, "peak_rss_added_mib": rss}
    print("| variant | median ms/step | x floor | x authors | tensor peak MiB/step | peak RSS added MiB |\n|---|---|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {median[name]:.0f} | {median[name] / median['matmul floor']:.2f} | {median[name] / median['authors']:.2f} "
              f"| {memory.get(name, float('nan')):.0f} | {rss.get(name, float('nan')):.0f} |")
    print(f"load average before/after: {load_before} / {load_after}; threads {record['threads']}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
