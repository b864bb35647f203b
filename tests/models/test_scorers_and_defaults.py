"""One way to set a model's defaults (``default_options``, shown by ``inspect.signature``), class scoring as a
registered part (each scorer against its formula written here), the model contract as a protocol, and old
checkpoints whose scoring flags are read as a scorer."""

from __future__ import annotations

import inspect
import json
from typing import Any, ClassVar

import pytest
import torch

import zslkit
from zslkit.contracts import MODEL_ATTRIBUTES, ContractError, ZSLModel, check_built_model
from zslkit.models import APN, GEMZSL, MSDN, ClassSpace
from zslkit.training.checkpoint import build_model, load_checkpoint, save_checkpoint

K, NA, C, D, B = 7, 9, 8, 6, 4
SEEN, UNSEEN = [0, 1, 3, 5], [2, 4]  # class 6 is in neither set: never predicted
GROUPS = {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6, 7, 8]}
g = torch.Generator().manual_seed(0)
ATT, EMB, X = torch.rand(K, NA, generator=g) * 3, torch.randn(NA, D, generator=g), torch.randn(B, C, 3, 4, generator=g)


def build(name, **options):
    return zslkit.create_model(name, class_attributes=ATT, attribute_embeddings=EMB, seen_classes=SEEN, unseen_classes=UNSEEN,
                               feature_dim=C, attribute_groups=GROUPS, **options)


# ------------------------------------------------------------------ defaults
def test_apn_and_gem_zsl_signatures_show_their_defaults():
    apn, gem, msdn = (inspect.signature(cls).parameters for cls in (APN, GEMZSL, MSDN))
    assert apn["scorer"].default == {"scorer": "raw_rows", "margin": 0.0, "probabilities": True}
    assert (apn["normalize_features"].default, apn["train_embeddings"].default, apn["unit_embeddings"].default) == (False, False, True)
    assert gem["scorer"].default == {"scorer": "cosine_rows", "eps": 1e-5, "margin": 0.0}
    assert (gem["normalize_features"].default, gem["train_embeddings"].default, gem["unit_embeddings"].default) == (False, False, False)
    assert (msdn["normalize_features"].default, msdn["scorer"].default["margin"]) == (True, 1.0)
    assert apn["branches"].default is APN.default_branches and "class_attributes" in apn
    assert not any(p.kind is p.VAR_KEYWORD for p in apn.values())  # no **options hiding them
    model = build("apn")
    assert not model.normalize_features and not model.V.requires_grad  # what the signature says is what is built
    assert "class_attributes" not in inspect.signature(model).parameters  # an instance is called as a module, not built


@pytest.mark.parametrize("name", ["apn", "gem_zsl"])
def test_did_you_mean_covers_their_options(name):
    with pytest.raises(TypeError, match=f"model '{name}' has no option 'normalize_featres'; did you mean 'normalize_features'"):
        build(name, normalize_featres=False)


def test_a_subclass_changes_one_default_and_keeps_the_rest_and_a_wrong_key_is_refused_when_defined():
    class LearnedAPN(APN):
        default_options: ClassVar[dict[str, Any]] = {"train_embeddings": True}

    params = inspect.signature(LearnedAPN).parameters
    assert params["train_embeddings"].default is True and params["normalize_features"].default is False
    assert params["scorer"].default == APN.default_options["scorer"]
    with pytest.raises(TypeError, match="no option 'normalise_features'.*did you mean 'normalize_features'"):
        type("Bad", (APN,), {"default_options": {"normalise_features": False}})
    with pytest.raises(TypeError, match="set 'branches' with default_branches"):
        type("Bad", (APN,), {"default_options": {"branches": {}}})


def test_none_means_the_class_default():
    assert build("gem_zsl", unit_embeddings=None).options == build("gem_zsl").options


# ------------------------------------------------------------------ scorers
def classes():
    return ClassSpace(ATT, SEEN, UNSEEN, margin=0.5, normalize=False)


def margin():
    m = torch.zeros(K)
    m[SEEN], m[UNSEEN] = -0.5, 0.5
    return m


@pytest.mark.parametrize(("name", "options", "rows"), [
    ("raw_rows", {}, lambda a: a),
    ("unit_rows", {}, lambda a: a / a.norm(dim=1, keepdim=True)),
    ("cosine_rows", {"eps": 0.5}, lambda a: a / (a.norm(dim=1, keepdim=True) + 0.5)),  # an eps large enough to tell
])
def test_each_scorer_is_its_formula(name, options, rows):
    scorer = zslkit.create("scorer", name, margin=0.5, **options)
    space = ClassSpace(ATT, SEEN, UNSEEN, margin=scorer.margin, normalize=scorer.unit_rows)
    psi = torch.randn(B, NA, generator=g)
    expected = torch.stack([torch.stack([sum(psi[b, i] * rows(ATT)[k, i] for i in range(NA)) + margin()[k] for k in range(K)])
                            for b in range(B)])
    torch.testing.assert_close(scorer.class_scores(psi, space), expected, rtol=1e-5, atol=1e-5)


def test_prediction_sums_scores_or_probabilities_over_the_seen_and_unseen_classes():
    space = classes()
    y1, y2 = torch.randn(B, K, generator=g), torch.randn(B, K, generator=g)
    weights = {"one": 0.7, "two": 0.3}
    plain = zslkit.create("scorer", "raw_rows").predict({"one": y1, "two": y2}, weights, space)
    torch.testing.assert_close(plain, 0.7 * y1 + 0.3 * y2)
    probs = zslkit.create("scorer", "raw_rows", probabilities=True).predict({"one": y1, "two": y2}, weights, space)
    known = SEEN + UNSEEN

    def softmax(y):
        p = torch.zeros_like(y)
        p[:, known] = torch.exp(y[:, known]) / torch.exp(y[:, known]).sum(1, keepdim=True)
        return p

    torch.testing.assert_close(probs, 0.7 * softmax(y1) + 0.3 * softmax(y2))


def test_models_score_through_their_scorer():
    for name, expected in (("msdn", "unit_rows"), ("apn", "raw_rows"), ("gem_zsl", "cosine_rows")):
        model = build(name)
        assert model.scorer.component_name == expected and model.options["scorer"]["scorer"] == expected
    model = build("msdn", scorer={"scorer": "raw_rows", "margin": 2.0})
    out = model(X)
    torch.testing.assert_close(out.branch_scores["a2v"], out.attribute_scores["a2v"] @ ATT.t() + 4 * margin())
    with pytest.raises(Exception, match="no scorer named 'unit_row'.*did you mean 'unit_rows'"):
        build("msdn", scorer="unit_row")


# ------------------------------------------------------------------ old checkpoints
OLD_FLAGS = {"unit_rows": "unit", "raw_rows": "none", "cosine_rows": "scores"}


@pytest.mark.parametrize("name", ["msdn", "apn", "gem_zsl"])
def test_a_checkpoint_with_the_four_old_flags_rebuilds_the_same_model(tmp_path, name):
    model = build(name).eval()
    path = save_checkpoint(tmp_path, 1, model)
    meta = json.loads(path.read_text())
    scorer = meta["model"]["options"].pop("scorer")
    meta["model"]["options"].update(margin=scorer.get("margin", 0.0), class_attributes_norm=OLD_FLAGS[scorer["scorer"]],
                                    class_attributes_eps=1e-5, predict_probabilities=scorer.get("probabilities", False))
    path.write_text(json.dumps(meta))
    rebuilt = build_model(load_checkpoint(path)).eval()
    assert type(rebuilt.scorer) is type(model.scorer)
    with torch.no_grad():
        assert torch.equal(rebuilt(X).scores, model(X).scores)


# ------------------------------------------------------------------ the contract as a protocol
def test_the_runtime_checks_derive_from_the_protocol():
    members = [n for n, v in vars(ZSLModel).items() if isinstance(v, property) or (callable(v) and not n.startswith("_"))]
    assert list(MODEL_ATTRIBUTES) == members == ["forward", "loss", "classes", "num_classes", "options", "loss_weights",
                                                 "set_loss_weights"]
    for missing in members[1:]:  # every nn.Module has a forward
        model = build("msdn")
        broken = type("Broken", (torch.nn.Module,), {})()
        for name in members:
            if name != missing:
                object.__setattr__(broken, name, getattr(model, name))
        with pytest.raises(ContractError, match=f"has no '{missing}'"):
            check_built_model(broken, name="broken")
    check_built_model(build("apn"), name="apn")
