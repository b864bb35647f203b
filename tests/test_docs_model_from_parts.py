"""docs/writing-a-plugin.md section 7: a model written only from registered parts.

The block of the page is executed as written; the model it defines is registered, built through
``zslkit.create_model`` and checked against an independent composition of its parts (normalise,
encode once, score every branch, class scores through the unit-row class attributes and its margin (0.5, from default_options),
weighted sum), then trained, checkpointed and rebuilt.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import zslkit
from zslkit.registry import get_component, register_component, unregister
from zslkit.training import TrainConfig, load_model, train

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"


def docs_model():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    code = next(b for b in blocks if "class GeometryPrototypes" in b)
    namespace: dict = {"__name__": "docs_model_from_parts"}
    exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - the docs' own code
    return namespace["GeometryPrototypes"]


@pytest.fixture
def registered():
    cls = docs_model()
    register_component("model", "geometry_prototypes", cls)
    yield cls
    unregister("model", "geometry_prototypes")


def small_data():
    return zslkit.load_dataset("synthetic", num_classes=8, images_per_class=8, channels=8, grid=3, embedding_dim=6)


def test_the_docs_model_is_the_composition_of_the_parts_it_names(registered):
    data = small_data()
    torch.manual_seed(0)
    model = zslkit.create_model("geometry_prototypes", class_attributes=data.class_attributes,
                                attribute_embeddings=data.attribute_embeddings, seen_classes=data.seen_classes,
                                unseen_classes=data.unseen_classes, feature_dim=data.features.shape[1]).eval()
    assert model.component_name == "geometry_prototypes"
    assert type(model.encoder) is get_component("encoder", "geometry_encoder")
    assert type(model.branches["a2v"]) is get_component("attention", "attribute_to_visual")
    assert type(model.branches["proto"]) is get_component("attention", "prototype")
    assert model.branches["proto"].prototypes.shape == (data.class_attributes.shape[1], 32)  # after the encoder
    x = torch.as_tensor(data.features[:4])
    out = model(x)
    # independent composition of the same modules
    f = x.flatten(2)
    f = f / f.norm(dim=1, keepdim=True)
    h = model.encoder(f, (3, 3))
    A = torch.as_tensor(data.class_attributes, dtype=torch.float32)
    A = A / A.norm(dim=1, keepdim=True)
    m = torch.tensor([0.5 if k in set(data.unseen_classes.tolist()) else -0.5 for k in range(A.shape[0])])  # its margin 0.5
    psi_a2v = model.branches["a2v"](h, model.V).scores
    maps = torch.einsum("ic,bcr->bir", model.branches["proto"].prototypes, h)
    psi_proto = maps.amax(dim=2)
    expected = 0.7 * (psi_a2v @ A.T + m) + 0.3 * (psi_proto @ A.T + m)
    torch.testing.assert_close(out.scores, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.maps["proto"], maps, rtol=1e-5, atol=1e-5)
    assert out.grid == (3, 3)
    # the compactness term reads the prototype maps on the grid: it is part of the total
    losses = model.loss(out, torch.as_tensor(data.labels[:4]))
    weights = {"attribute_ce": 1.0, "self_calibration": 0.1, "attribute_regression": 0.01, "compactness": 1e-4}
    torch.testing.assert_close(losses["total"], sum(w * losses[k] for k, w in weights.items()))


@pytest.mark.slow
def test_the_docs_model_trains_checkpoints_and_is_rebuilt(registered, tmp_path):
    data = small_data()
    result = train(data, "geometry_prototypes", TrainConfig(model="geometry_prototypes", epochs=3, batch_size=16, lr=1e-3),
                   out_dir=tmp_path / "run", progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    rebuilt = load_model(tmp_path / "run")
    x = torch.as_tensor(data.features[:5])
    result.model.eval()
    np.testing.assert_allclose(rebuilt(x).scores.detach().numpy(), result.model(x).scores.detach().numpy(), rtol=1e-6)
