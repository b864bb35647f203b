"""The converters of the authors' checkpoints: registered beside their models, listed by ``zslkit eval``, and each
one round-trips a state dict in the authors' layout (the key tables written here, from the modules' docs)."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
import torchvision

import zslkit
from tests.models import transzero_math as math_ref
from tests.test_interop import official_state as msdn_state
from zslkit.bench import format_markdown
from zslkit.cli import build_parser, main
from zslkit.training import evaluate

K, NA, C, D = 7, 9, 8, 5
SEEN, UNSEEN = [0, 1, 3, 5], [2, 4, 6]
GROUPS = {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6, 7, 8]}


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_every_converter_is_registered_beside_its_model_and_eval_accepts_it():
    names = zslkit.list_components("converter")
    assert {"msdn", "apn", "gem_zsl", "transzero", "transzero_pp"} <= set(names)
    for name in names:
        assert zslkit.get_component("converter", name).__module__.startswith("zslkit.models.")
    evaluate_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    action = next(a for a in evaluate_parser._actions if "--official-model" in a.option_strings)
    assert list(action.choices) == names and "apn" in action.choices and "gem_zsl" in action.choices
    with pytest.raises(SystemExit):
        main(["eval", "x.pth", "--official", "--official-model", "apm", "--dataset", "synthetic"])


def test_interop_keeps_every_loader_importable():
    from zslkit import interop
    from zslkit.models import apn_official, gem_zsl_official, msdn_official, transzero_official

    assert interop.load_official_apn is apn_official.load_official_apn
    assert interop.load_official_gem_zsl is gem_zsl_official.load_official_gem_zsl
    assert interop.load_official_msdn is msdn_official.load_official_msdn
    assert interop.load_official_transzero is transzero_official.load_official_transzero
    assert interop.load_official_transzero_pp is transzero_official.load_official_transzero_pp


# ------------------------------------------------------------------ round trips: zslkit key -> official key
MSDN_KEYS = {"V": "V", "branches.a2v.W1": "W_1", "branches.a2v.W2": "W_2", "branches.v2a.U1": "W_1_1", "branches.v2a.U2": "W_2_1"}


def test_msdn_round_trips():
    state = msdn_state(bias=0.5)
    model = zslkit.create("converter", "msdn", source=state)
    own = model.state_dict()
    for ours, theirs in MSDN_KEYS.items():
        assert torch.equal(own[ours], state[theirs]), theirs
    torch.testing.assert_close(own["classes.attributes"], state["att"])  # rows unit length already
    side = torch.where(own["classes.margin"] > 0, 1.0, -1.0).reshape(1, -1)
    assert torch.equal(side, state["mask_bias"]) and own["classes.margin"].abs().max() == 0.5


def resnet_sequential():
    torch.manual_seed(0)
    return torch.nn.Sequential(*list(torchvision.models.resnet18().children())[:-2])  # APN's self.resnet: children by index


def torchvision_backbone():
    fresh = torchvision.models.resnet18()
    return torch.nn.Sequential(OrderedDict((n, m) for n, m in fresh.named_children() if n not in ("avgpool", "fc")))


def test_apn_round_trips_with_its_backbone_and_fine_tunes_with_batch_statistics():
    sequential = resnet_sequential()
    state = {f"resnet.{k}": v for k, v in sequential.state_dict().items()}
    state.update({"ALE_vector": rand(NA, 512, 1, 1), "prototype_vectors.layer4": rand(NA, 512, 1, 1, seed=1)})
    net = zslkit.create("converter", "apn", source=state, class_attributes=torch.rand(K, NA), seen_classes=SEEN,
                        attribute_groups=GROUPS, backbone=torchvision_backbone())
    own = net.state_dict()
    assert torch.equal(own["head.branches.global.weights"].reshape(NA, 512, 1, 1), state["ALE_vector"])
    assert torch.equal(own["head.branches.local.prototypes"].reshape(NA, 512, 1, 1), state["prototype_vectors.layer4"])
    children = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
    for key, value in sequential.state_dict().items():
        index, rest = key.split(".", 1)
        assert torch.equal(own[f"backbone.{children[index]}.{rest}"], value), key
    net.train()  # the authors' model.train(): BatchNorm normalises with the batch's statistics
    assert net.options["batchnorm"] == "train" and all(m.training for m in net.backbone.modules())


def test_gem_zsl_round_trips_with_its_backbone():
    backbone_state = resnet_sequential().state_dict()
    names = [n for n, _ in torchvision.models.resnet18().named_children()]
    torchvision_named = {f"{names[int(k.split('.', 1)[0])]}.{k.split('.', 1)[1]}": v for k, v in backbone_state.items()}
    state = {"model": {"W": rand(D, 512), "V": rand(512, NA, seed=1), "scale": torch.tensor(25.0),
                       **{f"backbone.{k}": v for k, v in torchvision_named.items()}}}
    embeddings = rand(NA, D, seed=2)
    net = zslkit.create("converter", "gem_zsl", source=state, class_attributes=torch.rand(K, NA), attribute_embeddings=embeddings,
                        seen_classes=SEEN, attribute_groups=GROUPS, backbone=torchvision_backbone())
    own = net.state_dict()
    assert torch.equal(own["head.branches.attention.W2"], state["model"]["W"]) and torch.equal(own["head.branches.base.V"], state["model"]["V"])
    assert float(own["head.branches.base.scale"]) == 25.0 and torch.equal(own["head.V"], embeddings)
    assert all(torch.equal(own[f"backbone.{k}"], v) for k, v in torchvision_named.items())
    assert net.options["batchnorm"] == "train"


ENCODER_LAYER = {"mhatt.attention.fc_q": "attn.to_q", "mhatt.attention.fc_k": "attn.to_k", "mhatt.attention.fc_v": "attn.to_v",
                 "mhatt.attention.fc_o": "attn.to_out", "mhatt.layer_norm": "norm_attn", "lnorm": "norm", "pwff.fc1": "ffn.fc1",
                 "pwff.fc2": "ffn.fc2", "pwff.layer_norm": "ffn.norm"}
DECODER = {"linear1": "ffn.fc1", "linear2": "ffn.fc2", "norm1": "norm_self", "norm2": "norm_cross", "norm3": "ffn.norm"}


def transformer_back(own, T, E, B):
    """The authors' keys of one ``Transformer`` rebuilt from the zslkit state (the table of ``transzero_official``)."""
    out = {}
    pairs = {f"{T}.embed_cv.0": f"{E}.embed", f"{T}.embed_attr.0": f"{B}.embed", f"{T}.transformer_encoder.WGs.0": f"{E}.geometry"}
    pairs.update({f"{T}.transformer_encoder.layers.0.{k}": f"{E}.layers.0.{v}" for k, v in ENCODER_LAYER.items()})
    pairs.update({f"{T}.transformer_decoder.layers.0.{k}": f"{B}.decoder.{v}" for k, v in DECODER.items()})
    for theirs, ours in pairs.items():
        out[f"{theirs}.weight"], out[f"{theirs}.bias"] = own[f"{ours}.weight"], own[f"{ours}.bias"]
    for theirs, ours in (("self_attn", "self_attn"), ("multihead_attn", "cross_attn")):
        prefix, ours = f"{T}.transformer_decoder.layers.0.{theirs}", f"{B}.decoder.{ours}"
        out[f"{prefix}.in_proj_weight"] = torch.cat([own[f"{ours}.to_{n}.weight"] for n in "qkv"])
        out[f"{prefix}.in_proj_bias"] = torch.cat([own[f"{ours}.to_{n}.bias"] for n in "qkv"])
        out[f"{prefix}.out_proj.weight"], out[f"{prefix}.out_proj.bias"] = own[f"{ours}.to_out.weight"], own[f"{ours}.to_out.bias"]
    return out


@pytest.mark.parametrize("name", ["transzero", "transzero_pp"])
def test_transzero_round_trips(name):
    state = math_ref.official_state(name == "transzero_pp", C=10, D=6, d=8, I=5, K=6)
    own = zslkit.create("converter", name, source=state).state_dict()
    if name == "transzero":
        back = {**transformer_back(own, "transformer", "encoder", "branches.s2v"), "W_1": own["branches.s2v.W1"]}
    else:
        back = {**transformer_back(own, "transformer_s2v", "branches.s2v.encoder", "branches.s2v"),
                **transformer_back(own, "transformer_v2s", "branches.v2s.encoder", "branches.v2s"),
                "W_1_s2v": own["branches.s2v.W1"], "W_1_v2s": own["branches.v2s.W1"], "W_4_v2s": own["branches.v2s.W4"]}
    back.update(V=own["V"], att=own["classes.attributes"])
    ignored = {k for k in state if ".embed_cv_aux." in k or k.startswith("W_3") or k in ("weight_ce", "mask_bias", "bias")}
    assert set(back) == set(state) - ignored
    for key, value in back.items():
        assert torch.equal(value, state[key]), key


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def synthetic():
    return zslkit.load_dataset("synthetic", num_classes=8, family_size=4, images_per_class=6, channels=8, grid=3, embedding_dim=6, seed=0)


@pytest.mark.parametrize("name", ["apn", "gem_zsl"])
def test_eval_official_apn_and_gem_zsl_take_what_the_state_dict_lacks_from_the_dataset(synthetic, tmp_path, capsys, name):
    na, dim = synthetic.num_attributes, synthetic.attribute_embeddings.shape[1]
    if name == "apn":
        state = {"ALE_vector": rand(na, 8, 1, 1), "prototype_vectors.layer4": rand(na, 8, 1, 1, seed=1)}
        expected = zslkit.interop.load_official_apn(state, synthetic.class_attributes, synthetic.seen_classes, synthetic.unseen_classes,
                                                    attribute_groups=synthetic.attribute_groups, avg_pool=True)
    else:
        state = {"W": rand(dim, 8), "V": rand(8, na, seed=1), "scale": torch.tensor(20.0)}
        expected = zslkit.interop.load_official_gem_zsl(state, synthetic.class_attributes, synthetic.attribute_embeddings,
                                                        synthetic.seen_classes, synthetic.unseen_classes,
                                                        attribute_groups=synthetic.attribute_groups)
    torch.save(state, tmp_path / "official.pth")
    options = ["--official-option", "avg_pool=true"] if name == "apn" else []
    args = ["eval", str(tmp_path / "official.pth"), "--official", "--official-model", name, "--dataset", "synthetic",
            *[f"--dataset-option={k}={v}" for k, v in dict(num_classes=8, family_size=4, images_per_class=6, channels=8, grid=3,
                                                          embedding_dim=6, seed=0).items()], *options]
    assert main(args) == 0
    printed = capsys.readouterr().out
    metrics = evaluate(expected.eval(), synthetic)
    assert format_markdown([{"method": f"{name} (official)", **metrics}]).splitlines()[-1] in printed
    assert main([*args, "--official-option", "avg_pol=true"]) == 2
    assert "did you mean 'avg_pool'" in capsys.readouterr().err or name == "gem_zsl"
    assert main(["eval", str(tmp_path / "official.pth"), "--normalize-embeddings"]) == 2
    assert "applies only with --official" in capsys.readouterr().err


def test_a_converter_result_json_options_rebuild(synthetic):
    model = zslkit.create("converter", "msdn", source=msdn_state())
    json.dumps(model.options)
    assert model.component_name == "msdn"
