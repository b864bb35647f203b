"""Short trainings of every shipped RMSprop/Adam/SGD recipe, as SHA-256 hashes of the state dict after each epoch.

``test_recipe_bitwise.py`` compares them with ``data/recipe_trajectories.json``, recorded by
running this file on the code before the registered optimizers, schedules and samplers::

    git worktree add --detach /tmp/ref <commit>
    cd /tmp/ref && PYTHONPATH=/tmp/ref python <this file> > recipe_trajectories.json

Every case is a packaged recipe (its optimizer, momentum, weight decay, sampler, head-only
epochs and learning-rate decay as shipped) shortened to a few small epochs on the synthetic
dataset, on its region features or through a tiny random-init timm ResNet. Only public API
that existed before the change is used, so the same file runs on both sides.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import torch

#: (recipe, fine-tuned through a backbone, overrides): the shortened trainings.
CASES: tuple[tuple[str, bool, dict], ...] = (
    ("msdn/cub", False, {}),
    ("msdn/sun", False, {}),
    ("msdn/awa2", False, {}),
    ("dazle/cub", False, {}),
    ("dazle/awa2", False, {}),
    ("dazle/sun", False, {}),
    ("transzero/cub", False, {}),
    ("transzero/sun", False, {}),
    ("transzero/awa2", False, {}),
    ("transzero_pp/cub", False, {}),
    ("transzero_pp/sun", False, {}),
    ("apn/cub", False, {"head_only_epochs": 1, "lr_decay_every": 1, "epochs": 3}),
    ("apn/sun", False, {"head_only_epochs": 1, "lr_decay_every": 1, "epochs": 3}),
    ("apn/cub", True, {"head_only_epochs": 1, "lr_decay_every": 1, "epochs": 3}),
    ("gem_zsl/cub", True, {"sampler_options": {"ways": 4, "shots": 2, "batches": 3}, "lr_decay_every": 1}),
    ("gem_zsl/sun", False, {"sampler_options": {"ways": 4, "shots": 2, "batches": 3}, "lr_decay_every": 1}),
)
DATA = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 over the state dict's names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()


def case_key(recipe: str, backbone: bool) -> str:
    return f"{recipe}{'+backbone' if backbone else ''}"


def trajectory(recipe: str, backbone: bool, overrides: dict) -> list[str]:
    """The state-dict hash after each epoch of the shortened ``recipe``."""
    import timm

    import zslkit
    from zslkit.training import load_config, train

    data = zslkit.load_dataset("synthetic", **DATA)
    config = load_config(recipe, **{"epochs": 2, "batch_size": 16, **overrides})
    if getattr(config, "freeze_backbone", None):  # APN's frozen stages came after the recorded code: compare the rest
        config = load_config(config, freeze_backbone=[])
    hashes: list[str] = []
    extra = {}
    if backbone:
        torch.manual_seed(0)
        net = timm.create_model("test_resnet", pretrained=False, features_only=True, out_indices=(-1,))
        images = np.random.default_rng(0).standard_normal((data.num_images, 3, 32, 32)).astype(np.float32)
        extra = {"backbone": net, "inputs": images}
    train(data, config=config, split="train", progress=False, on_epoch=lambda epoch, model: hashes.append(state_hash(model)),
          **extra)
    return hashes


def trajectories() -> dict[str, list[str]]:
    torch.set_num_threads(1)
    return {case_key(recipe, backbone): trajectory(recipe, backbone, overrides) for recipe, backbone, overrides in CASES}


if __name__ == "__main__":
    json.dump(trajectories(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
