"""Run under torchrun (2 gloo processes) by ``test_distributed.py``: leave right after backward collectives.

Each step's backward all-reduces twice while autograd's context is stashed (an
all-reduce inside a custom backward, then DDP's gradient bucket), and the script ends
right after the last step, inside :func:`zslkit.distributed.process_group`: the exit that
aborted with "terminate called without an active exception" when gloo's workers dropped
those collectives while the interpreter was finalising. Before the last step rank ``r``
writes ``OUT/done_<r>.json`` (the steps run so far and the summed gradient of the bias).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from zslkit import distributed

STEPS = 20


class SummedBackward(torch.autograd.Function):
    """Identity forward; backward all-reduces the gradient (sums it over the ranks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def steps(out: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(64, 8))
    for step in range(1, STEPS + 1):
        SummedBackward.apply(net(torch.randn(16, 64))).sum().backward()
        if step == STEPS - 1:  # written before the last step, so that nothing slow follows its backward
            grad = net.module.bias.grad.tolist()  # d(sum)/d(bias) = 16 rows x 2 ranks per step, averaged by DDP
            (out / f"done_{distributed.rank()}.json").write_text(json.dumps({"steps": step, "bias_grad": grad}))


def main(out: Path, exit_mode: str = "synchronized") -> None:
    """``exit_mode`` "synchronized": :func:`process_group`; "plain": leave without the barrier and pause."""
    if exit_mode not in ("plain", "synchronized"):
        raise ValueError(f"exit mode must be 'plain' or 'synchronized', got {exit_mode!r}")
    if exit_mode == "plain":  # the reference benchmarks/ddp_exit.py compares against
        distributed.init("cpu")
        steps(out)
        distributed.teardown()
        return
    with distributed.process_group("cpu"):
        steps(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:])
