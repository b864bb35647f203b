"""Run under torchrun (2 gloo processes) by ``test_token_models_ddp.py``: ZSLViT, PSVMA and SVIP trained
data-parallel on ``synthetic_images`` with their recipes' tiny random-init ViTs.

``python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_token_worker.py OUT`` writes the
trained weights of each model to ``OUT/<model>.safetensors`` (rank 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import zslkit
from tests.models.ddp_compare import save_trained
from zslkit.training import load_config, train

MODELS = ("zslvit", "psvma", "svip")
#: 8 classes x 2 images (56 px), 10 to train on: batches of 7 and 3 over 2 ranks give shards of 4 + 3 and 2 + 1
TINY = {"num_classes": 8, "images_per_class": 2}
#: SGD, not the recipes' Adam: a ViT's key bias gets a gradient that is zero in exact arithmetic (softmax
#: ignores a shift shared by all keys), and Adam's first step turns its float noise into +-lr
SGD = {"optimizer": "sgd", "lr": 1e-2, "backbone_lr": 1e-2, "momentum": 0.0}


def trained(model: str) -> torch.nn.Module:
    data = zslkit.load_dataset("synthetic_images", **TINY)
    config = load_config(f"{model}/synthetic_images", epochs=1, batch_size=7, num_threads=1, **SGD)
    return train(data, model, config, split="train", progress=False).model


if __name__ == "__main__":
    save_trained(trained, MODELS, Path(sys.argv[1]))
