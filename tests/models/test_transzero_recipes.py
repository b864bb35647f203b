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
