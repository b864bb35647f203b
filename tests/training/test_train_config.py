"""The packaged configs carry the paper's recipe; YAML files are checked key by key."""

import pytest

from zslkit.models.msdn import MSDN
from zslkit.training import TrainConfig, available_configs, load_config


def test_packaged_configs_carry_the_authors_hyper_parameters():
    assert {"msdn/cub", "msdn/sun", "msdn/awa2", "msdn/synthetic"} <= set(available_configs())
    expected = {  # dataset: (epochs, momentum, self_calibration, semantic_distillation)
        "cub": (30, 0.9, 0.1, 0.001),
        "sun": (70, 0.9, 0.0001, 0.01),
        "awa2": (50, 0.0, 0.12, 1e-7),
    }
    for name, (epochs, momentum, lam, distill) in expected.items():
        cfg = load_config(f"msdn/{name}")
        assert (cfg.model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.batch_size) == ("msdn", "rmsprop", 1e-4, 1e-4, 50)
        assert (cfg.epochs, cfg.momentum) == (epochs, momentum)
        # the weights the model trains with: its defaults, overridden by the recipe where it differs
        weights = {**MSDN.default_losses, **cfg.loss_weights}
        assert weights == {"attribute_ce": 1.0, "self_calibration": lam, "semantic_distillation": distill}
        assert cfg.model_options["scorer"] == {"scorer": "unit_rows", "margin": 1.0}
    assert load_config("msdn/awa2").model_options["normalize_embeddings"] is True
    assert load_config("msdn/sun").sampler == "class_balanced"


def test_defaults_are_the_cub_recipe():
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum, cfg.batch_size, cfg.epochs) == ("rmsprop", 1e-4, 1e-4, 0.9, 50, 30)


def test_yaml_files_are_validated(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("epochs: 3\nlr: 1e-3\nloss_weights: {self_calibration: '2e-1'}\n")
    cfg = load_config(path, seed=7)
    assert (cfg.epochs, cfg.lr, cfg.seed, cfg.loss_weights) == (3, 1e-3, 7, {"self_calibration": 0.2})
    path.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="mine.yaml: unknown key 'learning_rate'"):
        load_config(path)
    path.write_text("epochs: three\n")
    with pytest.raises(ValueError, match="epochs must be a whole number, found"):
        load_config(path)
    path.write_text("optimizer: lbfgs\n")
    with pytest.raises(ValueError, match="TrainConfig.optimizer: no optimizer named .lbfgs.; known: adam, adamw"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="no config named 'imagenet'"):
        load_config("imagenet")
