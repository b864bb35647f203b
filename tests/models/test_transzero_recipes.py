"""The packaged TransZero / TransZero++ recipes carry the authors' settings; published numbers are labelled."""

import numpy as np
import pytest

import zslkit
from zslkit.bench.published import PUBLISHED_SOURCES, published
from zslkit.training import load_config

# (optimizer, lr, momentum, d, dropout, self-attention, loss weights) from the authors' scripts and wandb configs
AUTHORS = {
    ("transzero", "cub"): ("adam", 1e-4, None, 300, 0.4, True, {"self_calibration": 0.3, "attribute_regression": 0.005}),
    ("transzero", "sun"): ("sgd", 1e-4, 0.9, 128, 0.3, False, {"self_calibration": 0.25, "attribute_regression": 0.001}),
    ("transzero", "awa2"): ("sgd", 1e-4, 0.0, 300, 0.5, True, {"self_calibration": 2.0, "attribute_regression": 0.0005}),
    ("transzero_pp", "cub"): ("adam", 1e-4, None, 300, 0.4, True, {"self_calibration": 0.2, "attribute_ce_v2s": 0.1,
                                                                   "self_calibration_v2s": 0.02, "class_consistency": 0.01}),
    ("transzero_pp", "sun"): ("adam", 1e-4, None, 128, 0.3, False, {"self_calibration": 0.1, "attribute_ce_v2s": 1.0,
                                                                    "attribute_regression_v2s": 0.01, "attribute_consistency": 0.01}),
    ("transzero_pp", "awa2"): ("adam", 1e-5, None, 300, 0.5, True, {"self_calibration": 2.0, "self_calibration_v2s": 0.02,
                                                                    "attribute_regression_v2s": 5e-7, "class_consistency": 1e-5}),
}


@pytest.mark.parametrize(("model", "dataset"), list(AUTHORS))
def test_recipe_builds_the_authors_model(model, dataset):
    optimizer, lr, momentum, dim, dropout, satt, weights = AUTHORS[model, dataset]
    config = load_config(f"{model}/{dataset}")
    assert (config.model, config.optimizer, config.lr, config.batch_size) == (model, optimizer, lr, 50)
    if momentum is not None:
        assert config.momentum == momentum
    rng = np.random.default_rng(0)
    built = zslkit.create_model(model, class_attributes=rng.random((6, 4)), attribute_embeddings=rng.normal(size=(4, 300)),
                                seen_classes=[0, 1, 2], feature_dim=16, **config.model_options)
    built.set_loss_weights(config.loss_weights)
    for name, weight in weights.items():
        assert built.loss_weights[name] == pytest.approx(weight)
    for branch in built.branches.values():
        encoder = built.encoder if built.encoder is not None else branch.encoder
        assert encoder.output_dim == dim
        assert (branch.decoder.self_attn is not None) == satt
        assert branch.decoder.dropout_cross.p == dropout and encoder.layers[0].attn.dropout.p == 0.1
    assert built.normalize_embeddings == (dataset == "awa2")


def test_published_numbers_are_the_readmes():
    assert published("transzero", "cub") == pytest.approx({"T1": 0.768, "U": 0.693, "S": 0.683, "H": 0.688})
    assert published("transzero_pp", "sun") == pytest.approx({"T1": 0.676, "U": 0.486, "S": 0.378, "H": 0.425})
    assert "README" in PUBLISHED_SOURCES["transzero_pp"]


# Every setting of the authors' train_<dataset>.py and wandb_config/<dataset>_gzsl.yaml (TransZero, TransZero_pp):
# epochs, random_seed, optimizer (lr, momentum), sampler (their loaders' is_balance), tf_common_dim,
# tf_dim_feedforward, tf_dropout, tf_SAtt, normalize_V, lambda_, lambda_reg and, for TransZero++, weight_s2v,
# lambda_v2s, lambda_cst_reg_att, lambda_cst_reg_cls, tf_v2s_init. Weight decay 1e-4, batch 50, one head,
# margin (bias) 1 everywhere.
FULL = {
    ("transzero", "cub"): dict(epochs=200, seed=5, optimizer="adam", lr=1e-4, momentum=0.9, sampler="random", d=300, ffn=512,
                               dropout=0.4, satt=True, norm_v=False, lam=0.3, lam_reg=0.005),
    ("transzero", "sun"): dict(epochs=400, seed=6, optimizer="sgd", lr=1e-4, momentum=0.9, sampler="class_balanced", d=128, ffn=2048,
                               dropout=0.3, satt=False, norm_v=False, lam=0.25, lam_reg=0.001),
    ("transzero", "awa2"): dict(epochs=200, seed=17, optimizer="sgd", lr=1e-4, momentum=0.0, sampler="class_balanced", d=300, ffn=512,
                                dropout=0.5, satt=True, norm_v=True, lam=2.0, lam_reg=0.0005),
    ("transzero_pp", "cub"): dict(epochs=200, seed=4590, optimizer="adam", lr=1e-4, momentum=0.9, sampler="random", d=300, ffn=512,
                                  dropout=0.4, satt=True, norm_v=False, lam=0.2, lam_reg=1e-4, w_s2v=0.9, lam_v2s=0.1,
                                  lam_att=1e-3, lam_cls=1e-2, v2s_init="zeros"),
    ("transzero_pp", "sun"): dict(epochs=200, seed=1089, optimizer="adam", lr=1e-4, momentum=0.9, sampler="class_balanced", d=128,
                                  ffn=2048, dropout=0.3, satt=False, norm_v=False, lam=0.1, lam_reg=0.01, w_s2v=0.6, lam_v2s=1.0,
                                  lam_att=0.01, lam_cls=0.001, v2s_init="normal"),
    ("transzero_pp", "awa2"): dict(epochs=200, seed=8746, optimizer="adam", lr=1e-5, momentum=0.9, sampler="class_balanced", d=300,
                                   ffn=512, dropout=0.5, satt=True, norm_v=True, lam=2.0, lam_reg=5e-5, w_s2v=0.6, lam_v2s=0.01,
                                   lam_att=1e-5, lam_cls=1e-5, v2s_init="zeros"),
}
#: The recipe keys the test below checks; a recipe with another key fails until the test checks it too.
CHECKED_KEYS = {"model", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "seed", "sampler", "loss_weights", "model_options"}
CHECKED_OPTIONS = {"scorer", "normalize_embeddings", "encoder", "branches"}


def effective_weights(a):
    """The model's loss-term weights the authors' loss gives (the v2s stream's terms times lambda_v2s)."""
    weights = {"attribute_ce": 1.0, "self_calibration": a["lam"], "attribute_regression": a["lam_reg"]}
    if "lam_v2s" in a:
        weights |= {"attribute_ce_v2s": a["lam_v2s"], "self_calibration_v2s": a["lam"] * a["lam_v2s"],
                    "attribute_regression_v2s": a["lam_reg"] * a["lam_v2s"], "attribute_consistency": a["lam_att"],
                    "class_consistency": a["lam_cls"]}
    return weights


@pytest.mark.parametrize(("model", "dataset"), list(FULL))
def test_every_recipe_key_and_the_initialisation_it_sets(model, dataset):
    import torch
    import yaml

    from zslkit.training.config import _config_dir

    a = FULL[model, dataset]
    raw = yaml.safe_load((_config_dir() / model / f"{dataset}.yaml").read_text())
    assert set(raw) <= CHECKED_KEYS and set(raw["model_options"]) <= CHECKED_OPTIONS, set(raw) - CHECKED_KEYS
    config = load_config(f"{model}/{dataset}")
    assert (config.model, config.epochs, config.seed, config.optimizer, config.lr, config.momentum, config.sampler) == (
        model, a["epochs"], a["seed"], a["optimizer"], a["lr"], a["momentum"], a["sampler"])
    assert (config.batch_size, config.weight_decay) == (50, 1e-4)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    built = zslkit.create_model(model, class_attributes=rng.random((6, 4)), attribute_embeddings=rng.normal(size=(4, 300)),
                                seen_classes=[0, 1, 2], feature_dim=16, **config.model_options)
    built.set_loss_weights(config.loss_weights)
    expected = effective_weights(a)
    assert built.loss_weights.keys() == expected.keys()
    assert all(built.loss_weights[k] == pytest.approx(v, rel=1e-12) for k, v in expected.items()), built.loss_weights
    assert built.branch_weights == pytest.approx({"s2v": a.get("w_s2v", 1.0)} | ({"v2s": 1 - a["w_s2v"]} if "w_s2v" in a else {}))
    assert raw["model_options"]["scorer"] == {"scorer": "unit_rows", "margin": 1.0}  # unit class rows, margin 1
    assert type(built.scorer).__name__ == "UnitRows" and built.scorer.margin == 1.0 and built.scorer.unit_rows
    assert built.normalize_embeddings == a["norm_v"]
    for name, module in built.named_modules():
        if isinstance(module, torch.nn.Dropout):  # the encoder's attention weights: 0.1 whatever tf_dropout is
            assert module.p == (0.1 if ".layers.0.attn." in name else a["dropout"]), name
    for branch in built.branches.values():
        encoder = built.encoder if built.encoder is not None else branch.encoder
        assert (encoder.output_dim, encoder.layers[0].ffn.fc1.out_features, len(encoder.layers)) == (a["d"], a["ffn"], 1)
        assert (branch.decoder.ffn.fc1.out_features, branch.decoder.cross_attn.heads) == (a["ffn"], 1)
        assert (branch.decoder.self_attn is not None) == a["satt"]
    if model == "transzero_pp":  # tf_v2s_init: W_1^{v2s} zeros, or N(0, 1)
        w1 = built.branches["v2s"].W1
        assert torch.all(w1 == 0) if a["v2s_init"] == "zeros" else 0.9 < float(w1.std()) < 1.1 and abs(float(w1.mean())) < 0.05
