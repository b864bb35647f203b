"""End-to-end fine-tuning: a tiny random-init timm backbone in front of MSDN, trained on images."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import zslkit
from zslkit.models import BackboneModel
from zslkit.training import TrainConfig, load_model, predict_scores, train

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
# one plain SGD step over the 40 ``train`` images: the update is -lr * gradient, per group
ONE_STEP = TrainConfig(epochs=1, batch_size=40, optimizer="sgd", lr=1e-2, backbone_lr=1e-3, momentum=0.0,
                       weight_decay=0.0, seed=3, num_threads=1)


def timm_backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, features_only=True, out_indices=(-1,))


@pytest.fixture(scope="module")
def data():
    return zslkit.load_dataset("synthetic", **TINY)


@pytest.fixture(scope="module")
def images(data):
    return np.random.default_rng(0).standard_normal((data.num_images, 3, 64, 64)).astype(np.float32)


class ImageDataset(torch.utils.data.Dataset):
    """Map-style: one ``(3, 64, 64)`` tensor per index (as an image folder with a transform would give)."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return torch.from_numpy(self.images[index])


def test_one_step_updates_backbone_and_head_with_their_own_learning_rates(data, images):
    result = train(data, "msdn", ONE_STEP, split="train", backbone=timm_backbone(), inputs=images, progress=False)
    assert isinstance(result.model, BackboneModel)
    assert result.history[0]["lr"] == 1e-2 and result.history[0]["backbone_lr"] == 1e-3

    # the same model, built by hand, and the gradient of the loss on the same 40 images
    torch.manual_seed(ONE_STEP.seed)
    head = zslkit.create_model(
        "msdn", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
        seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=96,
    )
    reference = BackboneModel(timm_backbone(), head).train()
    batch = data.splits["train"]
    loss = reference.loss(reference(torch.from_numpy(images[batch])), torch.as_tensor(data.labels[batch]))["total"]
    names, params = zip(*[(n, p) for n, p in reference.named_parameters() if p.requires_grad])
    grads = dict(zip(names, torch.autograd.grad(loss, params)))
    trained = dict(result.model.named_parameters())
    moved = 0.0
    for name, param in reference.named_parameters():
        lr = 1e-3 if name.startswith("backbone.") else 1e-2
        torch.testing.assert_close(trained[name].detach(), param.detach() - lr * grads[name], rtol=1e-4, atol=1e-6)
        if name.startswith("backbone."):
            moved = max(moved, float((trained[name] - param).detach().abs().max()))
    assert moved > 1e-5  # the backbone did train
    # frozen BatchNorm: running statistics untouched by training
    running_var = result.model.backbone.state_dict()["bn1.running_var"]
    torch.testing.assert_close(running_var, torch.ones_like(running_var))


def test_zero_backbone_lr_freezes_the_backbone(data, images):
    cfg = TrainConfig(**{**ONE_STEP.to_dict(), "backbone_lr": 0.0})
    result = train(data, "msdn", cfg, split="train", backbone=timm_backbone(), inputs=images, progress=False)
    untouched = timm_backbone().state_dict()
    assert all(torch.equal(v, untouched[k]) for k, v in result.model.backbone.state_dict().items())
    assert "backbone_lr" not in result.history[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_torch_dataset_inputs_train_like_arrays(data, images, workers):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1)
    from_array = train(data, "msdn", cfg, split="train", backbone=timm_backbone(), inputs=images, progress=False)
    with_workers = TrainConfig(**{**cfg.to_dict(), "num_workers": workers})
    from_dataset = train(data, "msdn", with_workers, split="train", backbone=timm_backbone(), inputs=ImageDataset(images),
                         progress=False)
    ours, theirs = from_array.model.state_dict(), from_dataset.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_checkpoint_reloads_with_a_backbone_and_scores_images(data, images, tmp_path, capsys):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1)
    result = train(data, "msdn", cfg, split="train", backbone=timm_backbone(), inputs=images, out_dir=tmp_path,
                   progress=False)
    unseen = data.splits["test_unseen"]
    expected = predict_scores(result.model, data, unseen, inputs=images)
    with pytest.raises(ValueError, match="fine-tuned with a backbone .*pass backbone="):
        load_model(tmp_path)
    reloaded = load_model(tmp_path, backbone=timm_backbone())
    np.testing.assert_allclose(predict_scores(reloaded, data, unseen, inputs=images), expected, rtol=1e-5, atol=1e-6)
    metrics = zslkit.training.evaluate(reloaded, data, inputs=images)
    assert set(metrics) == {"T1", "U", "S", "H", "AUSUC"}
    # a plain module (not zslkit's timm backbone) is not rebuilt by the CLI: it says how to evaluate instead
    from zslkit.cli import main

    assert main(["eval", str(tmp_path)]) == 2
    assert "a backbone zslkit cannot rebuild ({'class': 'timm.models" in capsys.readouterr().err
    # resuming with the same backbone continues; another head is refused
    more = TrainConfig(**{**cfg.to_dict(), "epochs": 2})
    resumed = train(data, "msdn", more, split="train", backbone=timm_backbone(), inputs=images, out_dir=tmp_path,
                    resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    with pytest.raises(ValueError, match="cannot resume"):
        train(data, "dazle", more, split="train", backbone=timm_backbone(), inputs=images, out_dir=tmp_path,
              resume=True, progress=False)


def test_a_backbone_needs_its_images(data):
    with pytest.raises(ValueError, match=r"backbone=\.\.\.\) needs inputs=: the images"):
        train(data, "msdn", ONE_STEP, backbone=timm_backbone(), progress=False)
    with pytest.raises(ValueError, match="backbone_lr must be 0 .* or positive"):
        TrainConfig(backbone_lr=-1.0)
    with pytest.raises(ValueError, match="backbone_batchnorm must be one of"):
        TrainConfig(backbone_batchnorm="sometimes")


def test_train_cli_finetunes_a_timm_backbone_on_the_dataset_images(tmp_path, capsys):
    from tests.datasets.conftest import make_tiny_xlsa17
    from zslkit.cli import main

    tiny = make_tiny_xlsa17(tmp_path)
    argv = ["train", "--dataset", "xlsa17", f"--dataset-option=path={tiny.folder}", "--epochs", "1", "--batch-size", "8",
            "--backbone", "test_resnet", "--random-init", "--image-size", "32", "--set", "backbone_lr=1e-4",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert main([*argv, "--dataset-root", str(tiny.image_root)]) == 0, capsys.readouterr().err
    trained = table_row(capsys.readouterr().out)
    meta = zslkit.training.load_checkpoint(tmp_path / "run").meta
    assert meta["model"]["options"]["backbone"] == {"name": "timm", "model": "test_resnet", "weights": None}
    assert meta["config"]["backbone_lr"] == 1e-4
    assert main(argv) == 2
    assert "a backbone needs --dataset-root" in capsys.readouterr().err
    # zslkit eval rebuilds the fine-tuned backbone from the checkpoint and scores the same images
    data_option = f"--dataset-option=path={tiny.folder}"
    evaluated = ["eval", str(tmp_path / "run"), "--dataset", "xlsa17", data_option, "--image-size", "32"]
    assert main([*evaluated, "--dataset-root", str(tiny.image_root)]) == 0, capsys.readouterr().err
    scored = table_row(capsys.readouterr().out)
    assert {k: scored[k] for k in ("T1", "U", "S", "H", "AUSUC")} == {k: trained[k] for k in ("T1", "U", "S", "H", "AUSUC")}
    assert main(evaluated) == 2
    assert "a backbone needs --dataset-root" in capsys.readouterr().err
    assert main(["train", "--backbone", "test_resnet", "--random-init", "--epochs", "1"]) == 2
    assert "dataset 'synthetic' lists no image files" in capsys.readouterr().err


def table_row(printed: str) -> dict[str, str]:
    """The first row of the markdown table ``printed`` by the CLI, by column name."""
    lines = [line for line in printed.splitlines() if line.startswith("|")]
    header, row = ([cell.strip() for cell in line.strip("|").split("|")] for line in (lines[0], lines[2]))
    return dict(zip(header, row))
