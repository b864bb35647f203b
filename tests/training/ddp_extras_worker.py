"""Per-branch extras and constants under data parallelism, run under torchrun by ``test_distributed_extras.py``.

``python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_extras_worker.py OUT``: every rank
writes the gradients of one step, the gathered extras and the state after training into ``OUT``
(names end in ``_<rank>``); the test compares them with one process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import zslkit
from zslkit import distributed
from zslkit.attention import AttentionOutput, AttributeToVisual
from zslkit.training import TrainConfig, train
from zslkit.training.parallel import gather_output, wrap

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
SPLIT = "train"  # 40 images, batches of 13: shards 7 + 6, and a last batch of 1 (1 + 0)
CONFIG = TrainConfig(epochs=2, batch_size=13, lr=1e-3, num_threads=1, loss_weights={"attribute_ce": 1.0, "extras_loss": 1.0})
OPTIONS = {
    "branches": {"g": "ddp_extras_block", "v2a": "visual_to_attribute"},
    "losses": {"attribute_ce": 1.0, "extras_loss": 1.0},
}


class ExtrasBlock(AttributeToVisual):
    """attribute_to_visual plus extras: the attended features ``(B, I, C)`` (float) and the most attended region
    ``(B, I)`` (int64), and a constant: the projected queries ``V W1`` ``(I, C)``."""

    provides_extras = ("attended", "peak")

    def forward(self, features, embeddings, grid):
        base = super().forward(features, embeddings)
        attended = torch.einsum("bir,bcr->bic", base.maps, features)
        extras = {"attended": attended, "peak": base.maps.argmax(2)}
        return AttentionOutput(base.scores, base.maps, extras=extras, constants={"queries": embeddings @ self.W1})


class ExtrasLoss(torch.nn.Module):
    """``log(mean_b sum_i (q_i . e_{b,i})^2)``: a function of the whole batch, not a mean over images."""

    needs_extras = ("attended",)
    needs_grid = True

    def __init__(self, branches=("g",)):
        super().__init__()
        self.branches = list(branches)

    def forward(self, output, labels, classes):
        attended, queries = output.extras["g"]["attended"], output.constants["g"]["queries"]
        return torch.einsum("bic,ic->bi", attended, queries).square().sum(1).mean().log()


def register_parts() -> None:
    zslkit.register("attention", "ddp_extras_block")(ExtrasBlock)
    zslkit.register("loss", "extras_loss")(ExtrasLoss)


def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


def build(data):
    torch.manual_seed(0)
    return zslkit.create_model("msdn", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
                               seen_classes=data.seen_classes, unseen_classes=data.unseen_classes,
                               feature_dim=data.feature_dim, **OPTIONS)


def step_batch(data) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    batch = data.splits[SPLIT][:13]
    return batch, torch.as_tensor(data.features[batch]), torch.as_tensor(data.labels[batch])


def main(out: Path) -> None:
    register_parts()
    with distributed.process_group("cpu"):
        rank, world, data = distributed.rank(), distributed.world_size(), dataset()
        net = build(data)
        batch, x, labels = step_batch(data)
        counts = distributed.shard_counts(len(batch), world)
        start = sum(counts[:rank])
        parallel = wrap(net, torch.device("cpu"))  # kept alive: its hooks average the gradients in backward
        output = gather_output(parallel(x[start : start + counts[rank]]), counts, with_maps=False)
        losses = net.loss(output, labels)
        losses["total"].backward()
        save_file({n: p.grad for n, p in net.named_parameters() if p.grad is not None}, str(out / f"grads_{rank}.safetensors"))
        save_file({"attended": output.extras["g"]["attended"].detach().contiguous(), "peak": output.extras["g"]["peak"].contiguous()},
                  str(out / f"extras_{rank}.safetensors"))
        (out / f"losses_{rank}.json").write_text(json.dumps({k: float(v) for k, v in losses.items()}))
        trained = train(data, "msdn", CONFIG, split=SPLIT, progress=False, **OPTIONS)
        save_file({k: v.contiguous() for k, v in trained.model.state_dict().items()}, str(out / f"trained_{rank}.safetensors"))
        (out / f"history_{rank}.json").write_text(json.dumps(trained.history))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
