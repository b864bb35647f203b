"""Data-parallel training scenarios, run under torchrun by ``test_distributed.py``.

``python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_worker.py OUT``:
every rank writes what it ended with into ``OUT`` (file names end in ``_<rank>``);
the test compares those files with single-process runs of the same cases.
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
from zslkit.training import TrainConfig, predict_scores, train
from zslkit.training import trainer as trainer_module

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
#: 40 ``train`` images in batches of 13: shards of 7 and 6 images, then 1 and 0.
SPLIT = "train"
#: Loss weights large enough that self-calibration and distillation shape the gradient.
CONFIG = TrainConfig(
    epochs=2, batch_size=13, lr=1e-3, num_threads=1,
    loss_weights={"attribute_ce": 1.0, "self_calibration": 1.0, "semantic_distillation": 1.0},
)
#: End-to-end fine-tuning (BatchNorm frozen), with SGD: RMSprop divides every gradient entry
#: by its running magnitude, which turns the rounding of near-zero entries into visible steps.
#: Under DDP the images come from a torch Dataset read by a DataLoader worker.
E2E_CONFIG = TrainConfig(epochs=1, batch_size=13, optimizer="sgd", lr=1e-2, backbone_lr=1e-3, num_threads=1)
E2E_WORKERS = 1
#: The recipe options of the ViT-era papers while fine-tuning: crops and flips drawn per place in the
#: global batch, two micro-batches per batch, a warmup-cosine schedule, no decay on norms and biases,
#: the first conv frozen.
OPTIONS_CONFIG = TrainConfig(epochs=2, batch_size=13, optimizer="sgd", lr=1e-2, backbone_lr=1e-3, accumulate_steps=2,
                             schedule="cosine", schedule_options={"warmup_epochs": 1}, norm_bias_decay=False,
                             freeze_backbone=["0"], augment={"input_size": 12, "scale": [0.5, 1.0], "hflip": 0.5})
#: TransZero++ (both streams, the consistency terms) without dropout, small widths; SGD, as for
#: fine-tuning: some gradients are zero up to rounding (attention key biases), which Adam would turn into steps.
_STREAM = {"ffn_dim": 12, "dropout": 0.0, "encoder": {"encoder": "geometry_encoder", "dim": 8, "ffn_dim": 12, "dropout": 0.0,
                                                      "attention_dropout": 0.0}}
TZPP_CONFIG = TrainConfig(
    model="transzero_pp", epochs=2, batch_size=13, optimizer="sgd", lr=1e-3, num_threads=1,
    model_options={"branches": {"s2v": {"attention": "attribute_query_decoder", "weight": 0.9, **_STREAM},
                                "v2s": {"attention": "region_query_decoder", "weight": 0.1, **_STREAM}}},
)
IMAGE_SIZE = 16


def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


def images(num_images: int) -> np.ndarray:
    """Deterministic random "images" ``(N, 3, 16, 16)``."""
    return np.random.default_rng(0).standard_normal((num_images, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)


class ImageDataset(torch.utils.data.Dataset):
    """Map-style: one ``(3, 16, 16)`` tensor per index, as an image folder with a transform gives."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index])


def backbone() -> torch.nn.Module:
    """Two strided conv + BatchNorm stages: ``(B, 3, 16, 16) -> (B, 12, 4, 4)`` (no timm: it is slow to import)."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12),
    )


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def main(out: Path) -> None:
    saves: list[int] = []
    save_checkpoint = trainer_module.save_checkpoint

    def recording_save(out_dir, epoch, *args, **kwargs):
        saves.append(epoch)
        return save_checkpoint(out_dir, epoch, *args, **kwargs)

    trainer_module.save_checkpoint = recording_save
    with distributed.process_group("cpu"):
        rank, data = distributed.rank(), dataset()
        straight = train(data, "msdn", CONFIG, split=SPLIT, progress=False)
        save_file(_state(straight.model), str(out / f"straight_{rank}.safetensors"))
        (out / f"history_{rank}.json").write_text(json.dumps(straight.history))
        scores = predict_scores(straight.model, data, data.splits["test_unseen"], batch_size=4)
        np.save(out / f"scores_{rank}.npy", scores)

        first = TrainConfig(**{**CONFIG.to_dict(), "epochs": 1})
        train(data, "msdn", first, split=SPLIT, out_dir=out / "run", progress=False)
        # resumed with the features held on each rank's device: neither may change the result
        held = TrainConfig(**{**CONFIG.to_dict(), "resident": "on"})
        resumed = train(data, "msdn", held, split=SPLIT, out_dir=out / "run", resume=True, progress=False)
        assert resumed.resident is not None
        save_file(_state(resumed.model), str(out / f"resumed_{rank}.safetensors"))
        (out / f"saves_{rank}.json").write_text(json.dumps(saves))

        e2e_config = TrainConfig(**{**E2E_CONFIG.to_dict(), "num_workers": E2E_WORKERS})
        e2e = train(data, "msdn", e2e_config, split=SPLIT, backbone=backbone(), inputs=ImageDataset(images(data.num_images)),
                    progress=False)
        save_file(_state(e2e.model), str(out / f"e2e_{rank}.safetensors"))

        options = train(data, "msdn", OPTIONS_CONFIG, split=SPLIT, backbone=backbone(), inputs=images(data.num_images),
                        progress=False)
        save_file(_state(options.model), str(out / f"options_{rank}.safetensors"))

        tzpp = train(data, "transzero_pp", TZPP_CONFIG, split=SPLIT, progress=False)
        save_file(_state(tzpp.model), str(out / f"transzero_pp_{rank}.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
