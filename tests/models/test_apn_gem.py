"""APN and GEM-ZSL: scores and total loss against plain-torch computations of the papers' math, on state dicts
with the authors' key names; attribute groups from the datasets; recipes, stages and the CLI."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import zslkit
from zslkit.cli import main
from zslkit.datasets import read_attribute_names
from zslkit.datasets.attribute_groups import groups_from_names, packaged_groups
from zslkit.interop import load_official_apn, load_official_gem_zsl
from zslkit.models.class_space import MissingAttributeGroupsError
from zslkit.training import TrainConfig, load_config, train

K, NA, C, D, H, W, B = 7, 9, 8, 5, 3, 4, 4
SEEN, UNSEEN = torch.tensor([0, 1, 3, 5]), torch.tensor([2, 4, 6])
GROUPS = {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6, 7, 8]}


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    return {"att": torch.rand(K, NA, generator=g) * 3, "x": torch.randn(B, C, H, W, generator=g),
            "labels": torch.tensor([0, 5, 3, 0]), "g": g}


def seen_position(labels):
    return torch.searchsorted(SEEN, labels)


def plain_cpt(maps, sigmoid):
    """sum_{b,i,h,w} act(M) ((h - h*)^2 + (w - w*)^2), the peak (h*, w*) of every (b, i) map, written with loops."""
    total = torch.zeros(())
    for b in range(maps.shape[0]):
        for i in range(maps.shape[1]):
            m = maps[b, i]
            h0, w0 = divmod(int(m.argmax()), m.shape[1])
            dist = torch.tensor([[(h - h0) ** 2 + (w - w0) ** 2 for w in range(m.shape[1])] for h in range(m.shape[0])], dtype=m.dtype)
            total = total + ((torch.sigmoid(m) if sigmoid else m) * dist).sum()
    return total


@pytest.mark.parametrize("avg_pool", [False, True])
def test_official_apn_state_dict_scores_and_loss_equal_the_papers_math(problem, avg_pool):
    g, att, x, labels = problem["g"], problem["att"], problem["x"], problem["labels"]
    ale, proto = torch.randn(NA, C, 1, 1, generator=g) * 0.1, torch.randn(NA, C, 1, 1, generator=g) * 0.1
    model = load_official_apn({"ALE_vector": ale, "prototype_vectors.layer4": proto}, att, SEEN, UNSEEN,
                              avg_pool=avg_pool, attribute_groups=GROUPS)
    out = model(x)
    # the math, with convolutions and pooling as the paper writes it
    conv_g, maps = F.conv2d(x, ale), F.conv2d(x, proto)
    psi_g = (F.avg_pool2d(conv_g, (H, W)) if avg_pool else F.max_pool2d(conv_g, (H, W))).flatten(1)
    psi_l = F.max_pool2d(maps, (H, W)).flatten(1)
    torch.testing.assert_close(out.scores, torch.softmax(psi_g @ att.t(), dim=1), rtol=1e-5, atol=1e-7)
    target, y = att[labels], seen_position(labels)
    def xe(psi):
        return F.cross_entropy(torch.softmax(psi @ att[SEEN].t(), dim=1), y)
    def lasso(w):
        return sum(torch.sqrt((w[rows] ** 2).sum(0).add(1e-8).sum()) for rows in GROUPS.values())
    expected = (xe(psi_g) + 1e-2 * F.mse_loss(psi_g, target) + 5e-5 * lasso(ale.flatten(1))
                + xe(psi_l) + 1e-1 * F.mse_loss(psi_l, target) + 4e-2 * lasso(proto.flatten(1)) + 1e-9 * plain_cpt(maps, True))
    torch.testing.assert_close(model.loss(out, labels)["total"], expected, rtol=1e-5, atol=0)


def test_official_gem_zsl_state_dict_scores_and_loss_equal_the_papers_math(problem):
    g, att, x, labels = problem["g"], problem["att"], problem["x"], problem["labels"]
    Wq, V, w2v = torch.randn(D, C, generator=g), torch.randn(C, NA, generator=g), torch.randn(NA, D, generator=g) * 2
    model = load_official_gem_zsl({"model": {"W": Wq, "V": V, "scale": torch.tensor(20.0)}}, att, w2v, SEEN, UNSEEN,
                                  attribute_groups=GROUPS)
    out = model(x)
    gs = x.mean(dim=(2, 3)) @ V
    cos = (gs / (gs.norm(dim=1, keepdim=True) + 1e-5)) @ (att / (att.norm(dim=1, keepdim=True) + 1e-5)).t()
    torch.testing.assert_close(out.scores, 20.0 * cos, rtol=1e-5, atol=1e-5)
    query = w2v @ Wq  # (NA, C)
    attention = torch.softmax(torch.einsum("ic,bchw->bihw", query, x).flatten(2), dim=2).reshape(B, NA, H, W)
    psi = attention.flatten(2).max(dim=2).values
    decorrelation = sum(query[rows].norm(dim=0).mean() for rows in GROUPS.values()) / len(GROUPS)
    cpt = plain_cpt(attention, False) / attention.numel()
    expected = F.cross_entropy(20.0 * cos[:, SEEN], seen_position(labels)) + F.mse_loss(psi, att[labels]) + 0.1 * decorrelation + 0.2 * cpt
    torch.testing.assert_close(model.loss(out, labels)["total"], expected, rtol=1e-5, atol=0)


def test_official_backbone_weights_are_loaded_by_name():
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    sequential = torch.nn.Sequential(*list(source.children())[:-1])  # APN's self.resnet: children by index
    state = {f"resnet.{k}": v for k, v in sequential.state_dict().items()}
    state.update({"ALE_vector": torch.randn(NA, 512, 1, 1), "prototype_vectors.layer4": torch.randn(NA, 512, 1, 1)})
    fresh = torchvision.models.resnet18()
    backbone = torch.nn.Sequential(OrderedDict((n, m) for n, m in fresh.named_children() if n not in ("avgpool", "fc")))
    net = load_official_apn(state, torch.rand(K, NA), SEEN, UNSEEN, attribute_groups=GROUPS, backbone=backbone).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.backbone(images), sequential.eval()[0:8](images))
    with pytest.raises(Exception, match="missing key\\(s\\) ALE_vector"):
        load_official_apn({"prototype_vectors.layer4": torch.randn(NA, C, 1, 1)}, torch.rand(K, NA), SEEN)
    with pytest.raises(Exception, match="missing key\\(s\\) W"):
        load_official_gem_zsl({"V": torch.randn(C, NA), "scale": torch.tensor(20.0)}, torch.rand(K, NA), torch.randn(NA, D), SEEN)


def test_cub_names_give_its_28_groups_as_gem_zsl_lists_them(shared_data):
    names = read_attribute_names(shared_data("cub") / "attributes.txt", 312)
    groups = groups_from_names(names)
    bounds = [0, 9, 24, 39, 54, 58, 73, 79, 94, 105, 120, 135, 149, 152, 167, 182, 197, 212, 217, 222, 236, 240, 244, 248, 263, 278, 293, 308, 312]
    assert [(v[0], v[-1] + 1) for v in groups.values()] == list(zip(bounds[:-1], bounds[1:]))
    assert list(groups)[:3] == ["bill_shape", "wing_color", "upperparts_color"]
    assert packaged_groups("cub", 312) == groups  # the packaged file, for CUB loaded without its names
    assert all(v == list(range(v[0], v[-1] + 1)) for v in groups.values())


def test_packaged_awa2_and_sun_groups_partition_their_attributes():
    """No shared data needed: the packaged files alone."""
    for benchmark, n, count in (("awa2", 85, 9), ("sun", 102, 4), ("cub", 312, 28)):
        groups = packaged_groups(benchmark, n)
        assert len(groups) == count and sorted(i for v in groups.values() for i in v) == list(range(n))
    assert packaged_groups("awa2", 84) is None and packaged_groups("apy", 64) is None


def test_packaged_awa2_groups_name_the_real_predicates(shared_data):
    awa2 = packaged_groups("awa2", 85)
    predicates = read_attribute_names(shared_data("awa2") / "predicates.txt", 85)
    assert [predicates[i] for i in awa2["color"]] == ["black", "white", "blue", "brown", "gray", "orange", "red", "yellow"]
    assert [predicates[i] for i in awa2["habitat"]][:3] == ["oldworld", "arctic", "coastal"]
    assert predicates[awa2["nutrition"][-1]] == "newworld"  # as GEM-ZSL lists it (an upstream off-by-one, kept)


def synthetic(**changes):
    data = zslkit.load_dataset("synthetic", num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def test_a_loss_needing_groups_names_the_dataset_that_lacks_them():
    data = synthetic(attribute_groups=None)
    with pytest.raises(MissingAttributeGroupsError, match="dataset 'synthetic' has no attribute groups, and loss term 'regular_global' of model 'apn'"):
        train(data, "apn", TrainConfig(epochs=1), progress=False)


def test_head_only_epochs_then_decayed_lr_and_loss_weights_restored():
    data = synthetic()
    seen_weights = {}
    cfg = TrainConfig(model="apn", epochs=5, batch_size=20, optimizer="adam", lr=1e-2, head_only_epochs=2, head_only_lr=1e-3,
                      head_only_loss_weights={"cpt": 0.0}, lr_decay=0.5, lr_decay_every=2, num_threads=1)
    result = train(data, "apn", cfg, progress=False, on_epoch=lambda e, m: seen_weights.__setitem__(e, m.loss_weights["cpt"]))
    assert [h["lr"] for h in result.history] == [1e-3, 1e-3, 1e-2 * 0.5, 1e-2 * 0.5, 1e-2 * 0.25]  # epochs 3, 4: (n-1)//2 = 1
    assert seen_weights == {1: 0.0, 2: 0.0, 3: 1e-9, 4: 1e-9, 5: 1e-9}
    assert result.model.options["losses"]["cpt"]["weight"] == 1e-9


def test_head_only_epochs_leave_the_backbone_untouched():
    data = synthetic()
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(3))
    images = np.random.default_rng(0).standard_normal((data.num_images, 3, 12, 12)).astype(np.float32)
    start = [p.detach().clone() for p in backbone.parameters()]
    snapshots = {}
    cfg = TrainConfig(epochs=2, batch_size=20, optimizer="sgd", lr=1e-2, backbone_lr=1e-2, momentum=0.0, head_only_epochs=1, num_threads=1)
    train(data, "gem_zsl", cfg, backbone=backbone, inputs=images, progress=False,
          on_epoch=lambda e, m: snapshots.__setitem__(e, [p.detach().clone() for p in m.backbone.parameters()]))
    assert all(torch.equal(a, b) for a, b in zip(start, snapshots[1]))
    assert not all(torch.equal(a, b) for a, b in zip(start, snapshots[2]))


def test_recipes_load_and_name_only_their_models_terms():
    for model in ("apn", "gem_zsl"):
        for dataset in ("cub", "sun", "awa2", "synthetic"):
            cfg = load_config(f"{model}/{dataset}")
            assert cfg.model == model
            net = zslkit.create_model(model, class_attributes=np.random.rand(5, 85 if dataset == "awa2" else 12), seen_classes=[0, 1],
                                      feature_dim=4, attribute_groups=packaged_groups("awa2", 85) if dataset == "awa2" else {"g": [0, 1]},
                                      **cfg.model_options)
            assert set(cfg.loss_weights) <= set(net.loss_weights), (model, dataset)
    assert load_config("apn/cub").head_only_epochs == 6 and load_config("gem_zsl/sun").loss_weights == {"attribute_regression": 0.5}
    assert load_config("apn/cub").loss_weights == {} and load_config("apn/sun").loss_weights["cpt"] == 2e-7  # CUB's are the defaults


@pytest.mark.parametrize(("model", "chance_times"), [("apn", 5), ("gem_zsl", 2)])
def test_cli_trains_on_frozen_synthetic_features_with_the_models_recipe(tmp_path, capsys, model, chance_times):
    assert main(["train", "--model", model, "--dataset", "synthetic", "--no-progress", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "results.json").read_text())
    row = row[0] if isinstance(row, list) else row
    data = zslkit.load_dataset("synthetic")
    chance = 1.0 / len(data.unseen_classes)  # T1 is a fraction in results.json
    assert row["method"] == model and row["T1"] > chance_times * chance
    reloaded = zslkit.training.load_model(tmp_path)
    assert type(reloaded).__name__ == {"apn": "APN", "gem_zsl": "GEMZSL"}[model]
    assert reloaded.classes.attribute_groups == {k: tuple(v) for k, v in data.attribute_groups.items()}


def test_apn_published_numbers_are_the_readme_model_zoo_with_u_and_s_left_empty():
    from zslkit.bench.published import PUBLISHED_SOURCES, published

    assert published("apn", "cub") == pytest.approx({"T1": 0.721, "H": 0.672})
    assert published("apn", "sun") == pytest.approx({"T1": 0.615, "H": 0.375})
    assert "README" in PUBLISHED_SOURCES["apn"] and published("gem_zsl", "cub") is None


def test_ddp_training_of_both_models_equals_single_process(tmp_path):
    from pathlib import Path

    from tests.models.ddp_compare import assert_ddp_equals_single_process

    assert_ddp_equals_single_process(Path(__file__).with_name("ddp_apn_gem_worker.py"), ("apn", "gem_zsl"), tmp_path)


def test_bench_trains_each_model_with_its_own_recipe():
    from zslkit.bench.model_runner import ModelRunner

    data = synthetic()
    assert ModelRunner("apn").config(data).model == "apn" and ModelRunner("apn").config(data).lr == 1e-2
    assert ModelRunner("msdn").config(data).model == "msdn"  # the dataset's config, as before


@pytest.mark.parametrize("model", ["apn", "gem_zsl"])
def test_cli_finetunes_end_to_end_and_eval_rebuilds_the_same_scores(tmp_path, capsys, model):
    from tests.datasets.conftest import make_tiny_xlsa17
    from tests.training.test_finetune import table_row

    tiny = make_tiny_xlsa17(tmp_path)
    names = tmp_path / "names.txt"  # <group>::<value> names: the attribute groups the decorrelation terms need
    names.write_text("".join(f"has_part{i % 2}_color::v{i}\n" for i in range(6)))
    options = [f"--dataset-option=path={tiny.folder}", f"--dataset-option=attribute_names={names}"]
    argv = ["train", "--model", model, "--dataset", "xlsa17", *options, "--epochs", "2", "--batch-size", "8",
            "--backbone", "test_resnet", "--random-init", "--image-size", "32", "--set", "head_only_epochs=1",
            "--no-progress", "--out", str(tmp_path / "run"), "--dataset-root", str(tiny.image_root)]
    assert main(argv) == 0, capsys.readouterr().err
    trained = table_row(capsys.readouterr().out)
    meta = zslkit.training.load_checkpoint(tmp_path / "run").meta
    assert meta["model"]["name"] == model and meta["model"]["options"]["attribute_groups"] == {"part0_color": [0, 2, 4], "part1_color": [1, 3, 5]}
    # the head-only epoch leaves the backbone at lr 0, then it trains at backbone_lr
    assert [h["backbone_lr"] for h in meta["history"]] == [0.0, meta["config"]["backbone_lr"]] and meta["config"]["backbone_lr"] > 0
    evaluated = ["eval", str(tmp_path / "run"), "--dataset", "xlsa17", *options, "--image-size", "32", "--dataset-root", str(tiny.image_root)]
    assert main(evaluated) == 0, capsys.readouterr().err
    scored = table_row(capsys.readouterr().out)
    assert {k: scored[k] for k in ("T1", "U", "S", "H", "AUSUC")} == {k: trained[k] for k in ("T1", "U", "S", "H", "AUSUC")}


def test_head_only_loss_weights_must_name_the_models_terms():
    with pytest.raises(ValueError, match="head_only_loss_weights name term 'compactness' that model 'apn' does not have"):
        train(synthetic(), "apn", TrainConfig(epochs=1, head_only_epochs=1, head_only_loss_weights={"compactness": 0.0}), progress=False)


def test_resume_across_the_head_only_stage_continues_exactly(tmp_path):
    data = synthetic()
    cfg = TrainConfig(epochs=3, batch_size=20, optimizer="adam", lr=1e-2, head_only_epochs=2, head_only_lr=1e-3,
                      head_only_loss_weights={"cpt": 0.0}, lr_decay=0.5, lr_decay_every=1, num_threads=1)
    whole = train(data, "apn", cfg, progress=False)
    train(data, "apn", TrainConfig(**{**cfg.to_dict(), "epochs": 1}), out_dir=tmp_path, progress=False)
    resumed = train(data, "apn", cfg, out_dir=tmp_path, resume=True, progress=False)
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in whole.history] == [1e-3, 1e-3, 1e-2 * 0.25]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
