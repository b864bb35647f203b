"""The model contract of docs/concepts.md: a model written from that section alone, registered from a real
plugin, goes through training, checkpoints, resume, ``zslkit eval`` and ``zslkit bench``; violations are
refused naming the model and its plugin; the registered name is the model's one name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
from tests.conftest import REPO, make_distribution, run_python
from zslkit.contracts import ContractError, registered_name
from zslkit.datasets import make_synthetic
from zslkit.plugins import _plugins, get_plugin_manager, register_plugin
from zslkit.registry import unregister
from zslkit.training import TrainConfig, load_model, train
from zslkit.training.checkpoint import save_checkpoint

SMALL = dict(num_classes=20, images_per_class=12, channels=16, grid=4, embedding_dim=8)
DATA = [arg for key, value in SMALL.items() for arg in ("--dataset-option", f"{key}={value}")]
BENCH_DATA = [arg for key, value in SMALL.items() for arg in ("--dataset-option", f"{key}={value}")]


def docs_model_code() -> str:
    """The python block after ``<!-- contract-model -->`` in docs/concepts.md."""
    text = (REPO / "docs" / "concepts.md").read_text()
    return text.split("<!-- contract-model -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


PLUGIN_HOOK = """

import zslkit

@zslkit.hookimpl
def zslkit_register_components(registrar):
    registrar.register("model", "pooled_linear", PooledLinear)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract_site")
    make_distribution(root, "zslkit-contract-model", "0.3", {"contract_model": "contract_model_plugin"},
                      {"contract_model_plugin": docs_model_code() + PLUGIN_HOOK})
    return root


def zslkit_cli(site: Path, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "zslkit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def independent_scores(tensors: dict[str, torch.Tensor], features: np.ndarray) -> np.ndarray:
    """``y = (mean_r x) W^T b + ...`` from the stored tensors, in float64 numpy (the docs model's math)."""
    W = tensors["model.to_attributes.weight"].double().numpy()
    b = tensors["model.to_attributes.bias"].double().numpy()
    A = tensors["model.classes.attributes"].double().numpy()
    m = tensors["model.classes.margin"].double().numpy()
    pooled = features.astype(np.float64).reshape(features.shape[0], features.shape[1], -1).mean(axis=2)
    return (pooled @ W.T + b) @ A.T + m


def independent_t1(scores: np.ndarray, labels: np.ndarray, unseen: np.ndarray) -> float:
    """CZSL top-1: argmax among the unseen classes, accuracy averaged over the unseen classes."""
    predicted = unseen[scores[:, unseen].argmax(axis=1)]
    return float(np.mean([(predicted[labels == c] == c).mean() for c in unseen if (labels == c).any()]))


@pytest.fixture(scope="module")
def runs(site, tmp_path_factory):
    """``zslkit train`` straight (A), in two sittings with --resume (B), ``zslkit eval B`` and ``zslkit bench``.

    pooled_linear ships no recipe: every run trains its defaults' 30 epochs."""
    work = tmp_path_factory.mktemp("contract_runs")
    out = {"work": work}
    out["train"] = zslkit_cli(site, "train", "--model", "pooled_linear", *DATA, "--out", "A", "--no-progress", cwd=work)
    zslkit_cli(site, "train", "--model", "pooled_linear", *DATA, "--out", "B", "--epochs", "4", "--no-progress", cwd=work)
    zslkit_cli(site, "train", "--model", "pooled_linear", *DATA, "--out", "B", "--resume", "--no-progress", cwd=work)
    out["eval"] = zslkit_cli(site, "eval", "B", *DATA, cwd=work)
    out["bench"] = zslkit_cli(site, "bench", "--model", "pooled_linear", "--protocol", "paper", *BENCH_DATA,
                              "--no-progress", "--no-published", "--out", "C", cwd=work)
    return out


@pytest.mark.slow
def test_docs_model_checkpoints_name_it_and_resume_continues_exactly(runs):
    work = runs["work"]
    meta = json.loads((work / "A" / "epoch_030.json").read_text())
    assert meta["model"] == {"name": "pooled_linear", "options": {"feature_dim": 16, "margin": 1.0}}
    straight, resumed = load_file(str(work / "A" / "epoch_030.safetensors")), load_file(str(work / "B" / "epoch_030.safetensors"))
    model_keys = [k for k in straight if k.startswith("model.")]
    assert model_keys and all(torch.equal(straight[k], resumed[k]) for k in model_keys)
    history_a = json.loads((work / "A" / "history.json").read_text())
    history_b = json.loads((work / "B" / "history.json").read_text())
    assert [h["loss_cross_entropy"] for h in history_a] == [h["loss_cross_entropy"] for h in history_b]
    assert history_a[-1]["loss"] < history_a[0]["loss"]  # it learns


@pytest.mark.slow
def test_docs_model_is_rebuilt_from_its_checkpoint_and_evaluated(runs, site):
    work, data = runs["work"], make_synthetic(**SMALL)
    tensors = load_file(str(work / "B" / "epoch_030.safetensors"))
    test = data.splits["test_unseen"]
    expected = independent_scores(tensors, data.features[test])
    # the rebuilt model (create_model by the recorded name, attribute_embeddings=None: it has no V) scores as stored
    probe = f"""
    import json, numpy as np, zslkit
    from zslkit.training import load_model
    model = load_model({str(work / "B")!r})
    data = zslkit.load_dataset("synthetic", **{SMALL!r})
    print(model.component_name, zslkit.component_info("model", "pooled_linear").origin)
    print(json.dumps(model(__import__("torch").as_tensor(data.features[data.splits["test_unseen"]])).scores.tolist()))
    """
    result = run_python(probe, extra_path=[site])
    assert result.returncode == 0, result.stderr
    first, scores = result.stdout.strip().splitlines()[-2:]
    assert first.startswith("pooled_linear ") and "plugin zslkit-contract-model 0.3" in first
    np.testing.assert_allclose(np.array(json.loads(scores)), expected, rtol=1e-5, atol=1e-5)
    # zslkit eval B prints the T1 of that model (percent, one decimal)
    t1 = independent_t1(expected, data.labels[test], data.unseen_classes)
    row = next(line for line in runs["eval"].splitlines() if line.startswith("| pooled_linear (epoch 30)"))
    assert float(row.split("|")[2]) == pytest.approx(100 * t1, abs=0.05)


@pytest.mark.slow
def test_docs_model_benches_with_the_numbers_of_its_checkpoints(runs):
    work, data = runs["work"], make_synthetic(**SMALL)
    results = json.loads((work / "C" / "results.json").read_text())
    cell = next(c for c in results["cells"] if c["method"] == "pooled_linear")
    assert cell["source"] == "zslkit-contract-model"
    test = data.splits["test_unseen"]
    # the paper protocol trains as `zslkit train` does (same recipe, seed 0) and evaluates after every epoch
    per_epoch = []
    for epoch in range(1, 31):
        tensors = load_file(str(work / "A" / f"epoch_{epoch:03d}.safetensors"))
        per_epoch.append(independent_t1(independent_scores(tensors, data.features[test]), data.labels[test], data.unseen_classes))
    assert [e["test_T1"] for e in cell["epochs"]] == pytest.approx(per_epoch, abs=1e-9)
    row = next(r for r in results["rows"] if r["method"] == "pooled_linear")
    assert row["T1"] == pytest.approx(max(per_epoch), abs=1e-9)


# ------------------------------------------------------------------ violations, in-process plugins


@pytest.fixture
def docs_model():
    namespace: dict = {"__name__": "contract_docs_model"}
    exec(compile(docs_model_code(), "docs/concepts.md", "exec"), namespace)  # noqa: S102 - the docs' own code
    return namespace["PooledLinear"]


@pytest.fixture
def plugin_models():
    """``plugin_models(name -> class)``: register them from an in-process plugin ``contract_bad`` (removed after)."""
    registered = []

    def register(**models):
        class Plugin:
            @zslkit.hookimpl
            def zslkit_register_components(self, registrar):
                for name, cls in models.items():
                    registrar.register("model", name, cls)

        if get_plugin_manager().has_plugin("contract_bad"):
            get_plugin_manager().unregister(name="contract_bad")
        info = register_plugin(Plugin(), name="contract_bad", version="1.0")
        assert info.error is None, info.error
        registered.extend(models)

    yield register
    for name in registered:
        unregister("model", name)
    _plugins.pop("contract_bad", None)
    if get_plugin_manager().has_plugin("contract_bad"):
        get_plugin_manager().unregister(name="contract_bad")


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1, **changes)


def test_forward_returning_a_tensor_is_refused_naming_the_model_and_plugin(docs_model, plugin_models):
    class TensorForward(docs_model):
        def forward(self, features):
            return super().forward(features).scores

    plugin_models(tensor_forward=TensorForward)
    with pytest.raises(ContractError, match=r"model 'tensor_forward' \(.*plugin contract_bad 1.0\)\): forward must return "
                                            r"a zslkit.models.ModelOutput; found Tensor"):
        train(make_synthetic(**SMALL), "tensor_forward", tiny_config(), progress=False)


def test_loss_without_total_is_refused_naming_the_model_and_plugin(docs_model, plugin_models):
    class NoTotal(docs_model):
        def loss(self, output, labels):
            return {"cross_entropy": super().loss(output, labels)["cross_entropy"]}

    plugin_models(no_total=NoTotal)
    with pytest.raises(ContractError, match=r"model 'no_total' \(.*plugin contract_bad 1.0\)\): loss must return a dict "
                                            r"with 'total'.*found keys \['cross_entropy'\]"):
        train(make_synthetic(**SMALL), "no_total", tiny_config(), progress=False)


def test_a_model_without_its_class_space_is_refused_when_built(docs_model, plugin_models):
    class NoClasses(docs_model):
        def __init__(self, **options):
            super().__init__(**options)
            del self.classes

    plugin_models(no_classes=NoClasses)
    data = make_synthetic(**SMALL)
    with pytest.raises(ContractError, match=r"model 'no_classes' \(.*plugin contract_bad 1.0\)\): has no 'classes'"):
        zslkit.create_model("no_classes", class_attributes=data.class_attributes, attribute_embeddings=None,
                            seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=16)


def test_a_factory_without_the_construction_keywords_is_refused_at_registration():
    code = """
    import warnings
    warnings.simplefilter("ignore")
    import zslkit
    from zslkit.plugins import register_plugin
    class NoData:
        def __init__(self, width):
            pass
    class P:
        @zslkit.hookimpl
        def zslkit_register_components(self, registrar):
            registrar.register("model", "no_data", NoData)
    print(register_plugin(P(), name="nodata", version="2").error)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "model 'no_data' (plugin nodata)" in result.stdout and "class_attributes" in result.stdout


def test_the_registered_name_is_recorded_at_build_and_found_for_a_class_built_directly(docs_model, plugin_models, tmp_path):
    data = make_synthetic(**SMALL)
    shape = dict(class_attributes=data.class_attributes, attribute_embeddings=None, seen_classes=data.seen_classes,
                 unseen_classes=data.unseen_classes, feature_dim=16)
    plugin_models(pooled_once=docs_model)
    assert zslkit.create_model("pooled_once", **shape).component_name == "pooled_once"
    assert registered_name(docs_model(**shape)) == "pooled_once"  # reverse lookup: the one name of its class
    msdn = zslkit.models.MSDN(**{**shape, "attribute_embeddings": data.attribute_embeddings})
    assert not hasattr(msdn, "component_name") and registered_name(msdn) == "msdn"
    # built from its class, it still checkpoints under its name and is rebuilt from it
    rebuilt = load_model(save_checkpoint(tmp_path / "direct", 1, msdn))
    assert json.loads((tmp_path / "direct" / "epoch_001.json").read_text())["model"]["name"] == "msdn"
    x = torch.as_tensor(data.features[:4])
    torch.testing.assert_close(rebuilt(x).scores, msdn.eval()(x).scores)

    class Unregistered(docs_model):
        pass

    with pytest.raises(ContractError, match=r"model class .*Unregistered is not registered"):
        train(data, Unregistered(**shape), tiny_config(), out_dir=tmp_path / "u", progress=False)
    assert not (tmp_path / "u").exists()  # refused before anything is written

    class Twice(docs_model):
        pass

    plugin_models(twice_a=Twice, twice_b=Twice)
    with pytest.raises(ContractError, match=r"registered under several names \(twice_a, twice_b\)"):
        train(data, Twice(**shape), tiny_config(), out_dir=tmp_path / "t", progress=False)
    # built by name, the same class checkpoints under the name it was built with
    result = train(data, zslkit.create_model("twice_b", **shape), tiny_config(), out_dir=tmp_path / "b", progress=False)
    assert json.loads(result.checkpoint.read_text())["model"]["name"] == "twice_b"
    assert load_model(tmp_path / "b").component_name == "twice_b"


def test_no_model_or_loss_class_repeats_its_registered_name():
    for kind in ("model", "loss"):
        for name in zslkit.list_components(kind):
            factory = zslkit.get_component(kind, name)
            assert not hasattr(factory, "model_name") and not hasattr(factory, "term"), (kind, name)


def test_documented_model_attributes_are_the_checked_ones():
    from zslkit.contracts import MODEL_ATTRIBUTES

    section = (REPO / "docs" / "concepts.md").read_text().split("### Model (kind `model`)", 1)[1].split("<!-- contract-model -->")[0]
    for attribute in MODEL_ATTRIBUTES:
        assert f"| `{attribute}" in section, attribute
