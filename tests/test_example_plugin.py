"""The example plugin's components, built through the registry and run on a batch."""

import torch

import zslkit


def test_plugin_attention_block_through_registry_matches_direct_math():
    torch.manual_seed(0)
    block = zslkit.create(
        "attention", "example_temperature_attention", feature_dim=6, embedding_dim=4, num_attributes=3, temperature=0.5
    )
    features = torch.randn(2, 6, 5)
    embeddings = torch.randn(3, 4)
    out = block(features, embeddings)
    # independent computation with explicit loops
    W = block.weight.detach()
    for b in range(2):
        for i in range(3):
            response = torch.stack([embeddings[i] @ W @ features[b, :, r] for r in range(5)])
            weights = torch.exp(response / 0.5) / torch.exp(response / 0.5).sum()
            torch.testing.assert_close(out.maps[b, i], weights, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out.scores[b, i], (weights * response).sum(), rtol=1e-5, atol=1e-6)


def test_plugin_loss_term_through_registry():
    loss = zslkit.create("loss", "example_attribute_mse")

    class Output:
        attribute_scores = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 0.0]])}

    class Classes:
        attributes = torch.tensor([[1.0, 2.0], [0.0, 1.0]])

    value = loss(Output(), torch.tensor([0]), Classes())
    # branch a: ((0)^2 + (-2)^2)/2 = 2; branch b: (1 + 4)/2 = 2.5; mean 2.25
    assert value.item() == 2.25


def test_the_plugin_readme_and_docstring_name_what_it_registers():
    """The package's description matches its code: every component and case it registers is named."""
    from pathlib import Path

    import pytest
    import zslkit_example_plugin
    from zslkit_example_plugin import plugin

    root = Path(__file__).resolve().parents[1] / "plugins" / "zslkit-example-plugin"
    if Path(plugin.__file__).resolve().parents[1] != root:
        pytest.skip(f"zslkit_example_plugin is imported from {plugin.__file__}, not from this checkout")

    class Recorder:
        def __init__(self):
            self.names = []

        def register(self, kind, name, factory, **_):
            self.names.append(name)

    recorder = Recorder()
    plugin.zslkit_register_components(registrar=recorder)
    names = recorder.names + [case.name for case in plugin.zslkit_benchmark_cases()]
    assert {"example_temperature_attention", "example_attribute_mse", "msdn+temperature"} <= set(names)
    assert "attribute_regression" not in names  # zslkit's own loss term owns that name
    readme = (root / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, f"README.md must describe {name}"
        assert name in zslkit_example_plugin.__doc__, f"the package docstring must name {name}"


def test_plugin_model_trains_with_the_recipe_its_package_ships(caplog):
    from zslkit.training import recipe_for, train

    recipe = recipe_for("example_temperature_msdn", "synthetic")
    assert recipe.source == "zslkit_example_plugin/configs/example_temperature_msdn/synthetic.yaml"
    assert (recipe.config.model, recipe.config.epochs, recipe.config.seed) == ("example_temperature_msdn", 5, 3)
    # a dataset it ships no recipe for: its defaults, not msdn's recipe for that dataset
    assert recipe_for("example_temperature_msdn", "cub").line() == "example_temperature_msdn has no recipe for cub; using its defaults"
    data = zslkit.load_dataset("synthetic", num_classes=8, images_per_class=8, channels=8, grid=3, embedding_dim=6)
    caplog.set_level("INFO", logger="zslkit.training")
    result = train(data, "example_temperature_msdn", progress=True)
    assert caplog.text.count(f"recipe: example_temperature_msdn/synthetic ({recipe.source})") == 1
    assert len(result.history) == 5 and result.config == recipe.config
    # the recipe states the one weight that differs from the model's defaults
    assert result.model.loss_weights == {"attribute_ce": 1.0, "self_calibration": 0.1, "semantic_distillation": 0.01}
    assert result.model.options["branches"]["v2a"]["attention"] == "example_temperature_attention"
