"""Recipe options of the ViT-era papers: schedules, parameter groups, frozen stages, accumulation, augmentation,
the class-balanced sampler -- each against an independent computation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import timm
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

import zslkit
from zslkit.models import BackboneModel
from zslkit.optim import freeze_stages, parameter_groups
from zslkit.training import TrainConfig, build_optimizer, load_config, train
from zslkit.training.augment import augment_batch, build_augment

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)


@pytest.fixture(scope="module")
def data():
    return zslkit.load_dataset("synthetic", **TINY)


@pytest.fixture(scope="module")
def images(data):
    return np.random.default_rng(0).standard_normal((data.num_images, 3, 32, 32)).astype(np.float32)


def resnet():
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, features_only=True, out_indices=(-1,))


class Rates:
    """Records ``param_groups[i]["lr"]`` of every optimizer step while active (a global step pre-hook)."""

    def __enter__(self):
        self.steps: list[list[float]] = []
        self.handle = register_optimizer_step_pre_hook(
            lambda opt, args, kwargs: self.steps.append([g["lr"] for g in opt.param_groups]))
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ---------------------------------------------------------------- schedules
def test_warmup_cosine_sets_the_rate_of_every_update_as_computed_by_hand(data):
    # 40 train images, batch 10: 4 updates an epoch, 5 epochs; warmup over the first 2 epochs from 0.1
    cfg = TrainConfig(epochs=5, batch_size=10, optimizer="sgd", lr=0.2, weight_decay=0.0, schedule="cosine",
                      schedule_options={"warmup_epochs": 2, "warmup_factor": 0.1, "min_factor": 0.05})
    with Rates() as rates:
        train(data, "msdn", cfg, split="train", progress=False)
    expected = []
    for epoch in range(1, 6):
        for update in range(4):
            t = epoch - 1 + update / 4
            if t < 2:
                factor = 0.1 + t * (1 - 0.1) / 2
            else:
                factor = 0.05 + (1 - 0.05) * 0.5 * (1 + math.cos(math.pi * t / 5))
            expected.append(0.2 * factor)
    assert [r[0] for r in rates.steps] == pytest.approx(expected, rel=1e-12)


def test_step_and_multistep_factors_by_hand():
    step = zslkit.create("schedule", "step", epochs=30, decay_epochs=10, decay_rate=0.5)
    assert [step(t) for t in (0, 9.75, 10, 19.5, 20, 29)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])
    multi = zslkit.create("schedule", "multistep", epochs=30, milestones=[3, 8], decay_rate=0.1)
    # a milestone m applies from epoch m (counted from 1), i.e. from t = m - 1
    assert [multi(t) for t in (0, 1.5, 2, 6.9, 7, 20)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    warm = zslkit.create("schedule", "constant", epochs=4, warmup_epochs=1)
    assert [warm(t) for t in (0, 0.25, 0.5, 1, 3.5)] == pytest.approx([0, 0.25, 0.5, 1, 1])


def test_a_schedule_is_refused_beside_the_epoch_stages_and_bad_options_are_named():
    with pytest.raises(ValueError, match="schedule 'cosine' cannot be combined with head_only_epochs or lr_decay_every"):
        TrainConfig(schedule="cosine", lr_decay_every=10)
    with pytest.raises(ValueError, match="schedule_options: schedule 'cosine' has no option 'warmup'; did you mean 'warmup_factor' or 'warmup_epochs'"):
        TrainConfig(schedule="cosine", schedule_options={"warmup": 3})
    with pytest.raises(ValueError, match="TrainConfig.schedule: no schedule named 'cosin'; did you mean 'cosine'"):
        TrainConfig(schedule="cosin")


# ---------------------------------------------------------------- parameter groups
def members(groups, module):
    names = {id(p): n for n, p in module.named_parameters()}
    return [(sorted(names[id(p)] for p in g["params"]), g.get("weight_decay"), g["lr"]) for g in groups]


def test_no_decay_on_norms_and_biases_listed_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False))
    groups = parameter_groups(net, lr=0.1, backbone_lr=0.0, weight_decay=0.05, norm_bias_decay=False)
    assert members(groups, net) == [(["0.bias", "1.bias", "1.weight"], 0.0, 0.1), (["0.weight", "2.weight"], 0.05, 0.1)]
    legacy = parameter_groups(net, lr=0.1, backbone_lr=0.0, weight_decay=0.05)
    assert members(legacy, net) == [(["0.bias", "0.weight", "1.bias", "1.weight", "2.weight"], None, 0.1)]
    optimizer = build_optimizer(TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.05), groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.05]


def vit():
    """zslkit's ``timm`` backbone over a random-init test ViT (6 blocks, 2 x 2 patches of 32 px images)."""
    torch.manual_seed(0)
    return zslkit.create("backbone", "timm", model_name="test_vit", random_init=True, img_size=32, patch_size=16)


def test_layer_decay_scales_each_vit_block_and_keeps_the_head_rate(data):
    head = zslkit.create_model("msdn", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
                               seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=64)
    net = BackboneModel(vit(), head)
    groups = parameter_groups(net, lr=1e-3, backbone_lr=1e-4, weight_decay=0.05, norm_bias_decay=False, layer_decay=0.5)
    rates, decays = {}, {}
    names = {id(p): n.replace("backbone.model.", "backbone.") for n, p in net.named_parameters()}
    for group in groups:
        for p in group["params"]:
            rates[names[id(p)]], decays[names[id(p)]] = group["lr"], group["weight_decay"]
    # by hand: stem (cls/pos tokens, patch embedding) is layer 0, block k layer k + 1, the final norm goes
    # with the last block (6), timm's classifier (unused here) is the top, 7; rate = backbone_lr * 0.5 ** (7 - layer)
    for name, rate in rates.items():
        if name.startswith("head."):
            expected = 1e-3
        elif name.startswith("backbone.blocks."):
            expected = 1e-4 * 0.5 ** (6 - int(name.split(".")[2]))
        elif name.startswith(("backbone.cls_token", "backbone.pos_embed", "backbone.patch_embed")):
            expected = 1e-4 * 0.5 ** 7
        elif name.startswith("backbone.norm."):
            expected = 1e-4 * 0.5
        else:
            assert name.startswith("backbone.head."), name
            expected = 1e-4
        assert rate == pytest.approx(expected, rel=1e-12), name
        one_d = dict(net.named_parameters())[name.replace("backbone.", "backbone.model.")].ndim <= 1
        no_decay = one_d or name in ("backbone.cls_token", "backbone.pos_embed")
        assert decays[name] == (0.0 if no_decay else 0.05), name
    with pytest.raises(ValueError, match="layer_decay applies to a fine-tuned backbone"):
        parameter_groups(head, lr=1e-3, backbone_lr=1e-4, weight_decay=0.0, layer_decay=0.5)
    with pytest.raises(ValueError, match="layer_decay needs a backbone that names its layers .*FeatureListNet has none"):
        parameter_groups(BackboneModel(resnet(), head), lr=1e-3, backbone_lr=1e-4, weight_decay=0.0, layer_decay=0.5)


def test_head_only_epochs_keep_each_groups_layer_scale(data, images):
    cfg = TrainConfig(epochs=2, batch_size=40, optimizer="sgd", lr=1e-2, backbone_lr=1e-3, weight_decay=0.0, momentum=0.0,
                      head_only_epochs=1, head_only_lr=0.5, layer_decay=0.5)
    with Rates() as rates:
        train(data, "msdn", cfg, split="train", backbone=vit(), inputs=images, progress=False)
    first, second = rates.steps
    assert first[0] == 0.5 and set(first[1:]) == {0.0}  # head-only: the backbone's every layer at 0
    assert second[0] == 1e-2 and sorted(set(second[1:])) == pytest.approx([1e-3 * 0.5 ** k for k in range(7, -1, -1)])


# ---------------------------------------------------------------- frozen stages
def test_frozen_stages_get_no_update_and_no_optimizer_state(data, images, tmp_path):
    cfg = load_config("apn/cub", epochs=2, batch_size=20, head_only_epochs=0, lr=1e-2, backbone_lr=1e-2)
    assert cfg.freeze_backbone == ["conv1", "bn1", "layer1"]  # the authors' fine_tune(): layer2-4 only
    before = {k: v.clone() for k, v in resnet().named_parameters()}
    result = train(data, config=cfg, split="train", backbone=resnet(), inputs=images, out_dir=tmp_path, progress=False)
    after = dict(result.model.backbone.named_parameters())
    frozen = [n for n in before if n.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert frozen and all(torch.equal(after[n], before[n]) and not after[n].requires_grad for n in frozen)
    assert all(not torch.equal(after[n], before[n]) for n in before if n.split(".")[0] in ("layer2", "layer3", "layer4"))
    ckpt = zslkit.training.load_checkpoint(zslkit.training.latest_checkpoint(tmp_path))
    in_groups = sum(len(g["params"]) for g in ckpt.meta["optimizer"]["param_groups"])
    trainable = sum(1 for p in result.model.parameters() if p.requires_grad)
    fixed_in_head = sum(1 for p in result.model.head.parameters() if not p.requires_grad)
    assert in_groups == trainable == len(list(result.model.parameters())) - len(frozen) - fixed_in_head
    with_state = {key.split(".")[0] for key in ckpt.section("optimizer")}
    assert len(with_state) == trainable  # Adam's moments for the trainable parameters only


def test_a_frozen_name_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"freeze_backbone: 'layer9' names no parameter .*did you mean 'layer4'.*top-level names: conv1, bn1, layer1"):
        freeze_stages(resnet(), ["layer9"])
    backbone = resnet()
    names = freeze_stages(backbone, ["layer1.0"])  # a prefix covers a module's parameters, not layer10's
    assert names and all(n.startswith("layer1.0.") for n in names)
    assert sum(not p.requires_grad for p in backbone.parameters()) == len(names)


# ---------------------------------------------------------------- accumulation
def test_accumulated_micro_batches_make_the_big_batchs_update(data):
    # one epoch = one batch of all 40 train images; plain SGD at lr 1: the update is minus the gradient.
    # DAZLE's attribute cross-entropy averages over images; its self-calibration (the log of the batch's
    # mean unseen mass) does not, so it is off here
    one = TrainConfig(epochs=1, batch_size=40, optimizer="sgd", lr=1.0, weight_decay=0.0, momentum=0.0, sampler="shuffle",
                      loss_weights={"self_calibration": 0.0})
    whole = train(data, "dazle", one, split="train", progress=False).model
    split = train(data, "dazle", load_config(one, accumulate_steps=4), split="train", progress=False).model
    torch.manual_seed(one.seed)
    initial = zslkit.create_model("dazle", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
                                  seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=data.feature_dim)
    # the big batch's gradient, computed here: the same images in the sampler's order
    order = np.random.default_rng(one.seed).permutation(data.splits["train"])
    features = torch.from_numpy(np.asarray(data.features[order], dtype=np.float32))
    initial.train()
    initial.set_loss_weights({"self_calibration": 0.0})
    initial.loss(initial(features), torch.as_tensor(data.labels[order]))["total"].backward()
    for name, p in initial.named_parameters():
        if p.grad is None:
            continue
        expected = p.detach() - p.grad
        assert torch.allclose(dict(whole.named_parameters())[name], expected, atol=1e-6), name
        assert torch.allclose(dict(split.named_parameters())[name], expected, atol=1e-6), name
    moved = max((dict(split.named_parameters())[n] - p).abs().max().item() for n, p in initial.named_parameters())
    assert moved > 1e-4
    with pytest.raises(ValueError, match="accumulate_steps must be at least 1"):
        TrainConfig(accumulate_steps=0)


# ---------------------------------------------------------------- sampler
def test_class_balanced_per_class_counts(data):
    labels, indices = data.labels, data.splits["train"]
    classes = np.unique(labels[indices])
    sampler = zslkit.create("sampler", "class_balanced", images_per_class=3)
    batches = list(sampler(indices, labels, 12, np.random.default_rng(0)))
    assert len(batches) == 4  # ceil(40 / 12)
    for batch in batches:
        counts = np.unique(labels[batch], return_counts=True)[1]
        assert len(counts) == 4 and set(counts.tolist()) == {3}  # 12 // 3 distinct classes, 3 images each
        assert set(labels[batch]) <= set(classes.tolist())
    default = list(zslkit.create("sampler", "class_balanced")(indices, labels, 16, np.random.default_rng(0)))
    for batch in default:  # 16 // #classes images of every class of the split
        values, counts = np.unique(labels[batch], return_counts=True)
        assert values.tolist() == classes.tolist() and set(counts.tolist()) == {16 // len(classes)}
    with pytest.raises(ValueError, match="images_per_class must be a positive integer"):
        TrainConfig(sampler="class_balanced", sampler_options={"images_per_class": 0})


# ---------------------------------------------------------------- augmentation
def test_augmentation_with_full_crops_and_certain_flips_mirrors_the_images(data, images):
    seen = []

    class Recording(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = resnet()

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.inner(x)

    cfg = TrainConfig(epochs=1, batch_size=40, optimizer="sgd", lr=1e-3, sampler="shuffle",
                      augment={"input_size": 32, "scale": [1.0, 1.0], "ratio": [1.0, 1.0], "hflip": 1.0})
    train(data, "msdn", cfg, split="train", backbone=Recording(), inputs=images, progress=False)
    order = np.random.default_rng(cfg.seed).permutation(data.splits["train"])
    expected = torch.from_numpy(images[order]).flip(-1)
    assert torch.allclose(seen[-1], expected, atol=1e-5)


def test_augmented_crops_depend_on_seed_epoch_and_place_only():
    transform = build_augment({"input_size": 16, "scale": [0.2, 0.6], "hflip": 0.5})
    batch = torch.randn(6, 3, 24, 24)
    state, python_state = torch.get_rng_state(), random.getstate()
    first = augment_batch(transform, batch, seed=1, epoch=2, step=0)
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == python_state
    assert first.shape == (6, 3, 16, 16)
    # image i of a shard at offset 4 is image 4 + i of the global batch: the same crop
    assert torch.equal(augment_batch(transform, batch[4:], seed=1, epoch=2, step=0, offset=4), first[4:])
    assert not torch.equal(augment_batch(transform, batch, seed=1, epoch=3, step=0), first)


def test_augment_options_are_checked(data):
    with pytest.raises(ValueError, match="augment: unknown option 'color_jitter'.*resize, crop and flip only"):
        TrainConfig(augment={"input_size": 32, "color_jitter": 0.4})
    with pytest.raises(ValueError, match="augment needs input_size"):
        TrainConfig(augment={"hflip": 0.5})
    with pytest.raises(ValueError, match="augment crops and flips images: it applies when fine-tuning"):
        train(data, "msdn", TrainConfig(augment={"input_size": 32}), split="train", progress=False)


# ---------------------------------------------------------------- a plugin's schedule
def test_the_docs_plugin_schedule_registers_and_sets_the_rates(data):
    import re
    from pathlib import Path

    from zslkit.plugins import Registrar
    from zslkit.registry import unregister

    page = (Path(__file__).resolve().parents[2] / "docs" / "writing-a-plugin.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S) if "def halving" in b)
    registrar = Registrar("docs-example", "0")
    exec(compile(code, "docs/writing-a-plugin.md", "exec"), {"registrar": registrar})  # noqa: S102 - the docs' own code
    registrar._commit()
    try:
        cfg = TrainConfig(epochs=4, batch_size=40, optimizer="sgd", lr=0.4, schedule="halving", schedule_options={"every": 2})
        with Rates() as rates:
            train(data, "msdn", cfg, split="train", progress=False)
        assert [r[0] for r in rates.steps] == [0.4, 0.4, 0.2, 0.2]  # one update an epoch: t = 0, 1, 2, 3
    finally:
        unregister("schedule", "halving")
    with pytest.raises(zslkit.contracts.ContractError, match="schedule 'late' .*must accept keyword options epochs"):
        Registrar("docs-example", "0").register("schedule", "late", lambda total: None)


def test_a_run_with_every_option_resumes_bitwise(data, images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=20, optimizer="adamw", lr=1e-3, backbone_lr=1e-4, weight_decay=0.05,
                      schedule="cosine", schedule_options={"warmup_epochs": 1}, norm_bias_decay=False,
                      freeze_backbone=["conv1"], accumulate_steps=2, sampler="class_balanced",
                      augment={"input_size": 24, "scale": [0.5, 1.0], "hflip": 0.5})
    straight = train(data, "msdn", cfg, split="train", backbone=resnet(), inputs=images, progress=False)

    def interrupt(epoch, model):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # stopped in epoch 2: the checkpoint of epoch 1 is the latest
        train(data, "msdn", cfg, split="train", backbone=resnet(), inputs=images, out_dir=tmp_path, progress=False,
              on_epoch=interrupt)
    resumed = train(data, "msdn", cfg, split="train", backbone=resnet(), inputs=images, out_dir=tmp_path, resume=True,
                    progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()))


def test_a_checkpoint_written_before_the_options_resumes_with_their_defaults(data, tmp_path):
    import json

    from zslkit.training.checkpoint import checkpoint_paths

    cfg = TrainConfig(epochs=2, batch_size=20, lr=1e-3)
    train(data, "msdn", load_config(cfg, epochs=1), split="train", out_dir=tmp_path, progress=False)
    meta_path = checkpoint_paths(tmp_path, 1)[1]
    meta = json.loads(meta_path.read_text())
    new = ("optimizer_options", "schedule", "schedule_options", "norm_bias_decay", "layer_decay", "freeze_backbone",
           "accumulate_steps", "augment")
    meta["config"] = {k: v for k, v in meta["config"].items() if k not in new}
    for group in meta["optimizer"]["param_groups"]:
        group.pop("role")
    meta_path.write_text(json.dumps(meta))
    resumed = train(data, "msdn", cfg, split="train", out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    with pytest.raises(ValueError, match="cannot resume, config accumulate_steps is 1 in the checkpoint and 2 now"):
        train(data, "msdn", load_config(cfg, epochs=3, accumulate_steps=2), split="train", out_dir=tmp_path, resume=True,
              progress=False)


def test_the_timm_and_adamw_optimizers_step_as_their_torch_counterparts():
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(3)]
    grads = [torch.randn(5, 3), torch.randn(3)]

    def stepped(make):
        params = [p.clone().requires_grad_() for p in start]
        optimizer = make(params)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
        return params

    settings = dict(lr=0.1, weight_decay=0.01, momentum=0.8)
    timm_sgd = stepped(lambda ps: zslkit.create("optimizer", "timm", params=ps, opt="momentum", **settings))
    torch_sgd = stepped(lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.01, momentum=0.8))
    assert all(torch.allclose(a, b) for a, b in zip(timm_sgd, torch_sgd))
    ours = stepped(lambda ps: zslkit.create("optimizer", "adamw", params=ps, **settings))
    plain = stepped(lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.01, betas=(0.8, 0.999)))
    assert all(torch.equal(a, b) for a, b in zip(ours, plain))
    with pytest.raises(ValueError, match="optimizer_options: optimizer 'timm': unknown opt 'lamd'; did you mean .*'lamb'"):
        TrainConfig(optimizer="timm", optimizer_options={"opt": "lamd"})
