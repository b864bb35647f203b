"""Run under torchrun (2 gloo processes) by ``test_apn_gem.py``: APN and GEM-ZSL trained data-parallel.

``python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_apn_gem_worker.py OUT`` writes the
trained weights of each model to ``OUT/<model>.safetensors`` (rank 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import zslkit
from tests.models.ddp_compare import save_trained
from zslkit.training import TrainConfig, train

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
#: batches of 13 over 2 ranks: shards of 7 and 6, a last batch of 1 (1 + 0); the compactness and
#: decorrelation terms weighted up so that they shape the gradient
CONFIG = TrainConfig(epochs=2, batch_size=13, optimizer="sgd", lr=1e-2, momentum=0.0, num_threads=1,
                     head_only_epochs=1, head_only_lr=1e-3)
WEIGHTS = {"apn": {"cpt": 1e-2, "regular_local": 1.0, "regular_global": 1.0}, "gem_zsl": {"compactness": 1.0, "attribute_decorrelation": 1.0}}


def trained(model: str) -> torch.nn.Module:
    data = zslkit.load_dataset("synthetic", **TINY)
    return train(data, model, TrainConfig(**{**CONFIG.to_dict(), "loss_weights": WEIGHTS[model]}), split="train", progress=False).model


if __name__ == "__main__":
    save_trained(trained, ("apn", "gem_zsl"), Path(sys.argv[1]))
