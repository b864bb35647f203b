"""``load_official_psvma``: a state dict in the authors' ``PSVMANet`` layout (built here from a zslkit model with
this file's own key table) loads into a zslkit PSVMA that scores as the model it came from; ``zslkit eval
--official --official-model psvma`` takes it."""

import re

import pytest
import torch

import zslkit
from zslkit.cli import main
from zslkit.datasets import make_synthetic_images
from zslkit.datasets.checks import CheckpointError
from zslkit.training import evaluate

DATA = {"num_classes": 8, "images_per_class": 4, "image_size": 28}
SHAPE = {"final_norm": False, "img_size": 28, "patch_size": 7, "depth": 3, "embed_dim": 32, "num_heads": 2}
MODULE = {"dsvtm.W": "W", "dsvtm.encode.": "blocks.enc_attn.", "dsvtm.decode.": "blocks.dec_attn.",
          "dsvtm.gate.": "blocks.group_compact.", "dsvtm.refine.": "blocks.enc_ffn.", "dsvtm.ffn.": "blocks.ffn1.",
          "dsvtm.mixer.norm.": "blocks.reason.norm.", "dsvtm.mixer.net.0.": "blocks.reason.net.0.",
          "dsvtm.mixer.net.2.": "blocks.reason.net.3.", "dsvtm.mixer.net.4.": "blocks.reason.net.6."}


def official_key(key: str) -> str | None:
    """The authors' name of a zslkit key (``None``: not in their state dict)."""
    if key.startswith("backbone.model.blocks."):
        index, rest = key[len("backbone.model.blocks."):].split(".", 1)
        return f"backbone_1.{rest}" if int(index) == SHAPE["depth"] - 1 else f"backbone_0.{index}.{rest}"
    fixed = {"backbone.model.cls_token": "cls_token", "backbone.model.pos_embed": "pos_embed",
             "branches.base.V": "V", "branches.base.scale": "scale"}
    if key in fixed:
        return fixed[key]
    if key.startswith("backbone.model.patch_embed."):
        return "backbone_patch." + key[len("backbone.model.patch_embed."):]
    if key.startswith("adapters.by_entry."):
        rest = key[len("adapters.by_entry."):]
        for ours, theirs in MODULE.items():
            if rest.startswith(ours):
                return theirs + rest[len(ours):]
    return None  # V (the word vectors), the class space, timm's unused head


@pytest.fixture(scope="module")
def pair():
    dataset = make_synthetic_images(**DATA)
    torch.manual_seed(0)
    adapters = {"dsvtm": {"adapter": "dual_semantic_visual", "place": "after_block", "block": -2, "groups": 6,
                          "num_patches": 16, "mixer_hidden": 20},
                "reembed": {"adapter": "reembed", "place": "after_block", "block": -2},
                "dsvtm_2": {"share": "dsvtm", "place": "after_block", "block": -1}}
    model = zslkit.create("model", "psvma", class_attributes=dataset.class_attributes,
                          attribute_embeddings=dataset.attribute_embeddings, seen_classes=dataset.seen_classes,
                          unseen_classes=dataset.unseen_classes, backbone_random_init=True, backbone_options=SHAPE,
                          adapters=adapters).eval()
    state = {official_key(k): v.clone() for k, v in model.state_dict().items() if official_key(k) is not None}
    state["scale"] = torch.tensor(25.0)
    # tensors their model holds and never reads: an unused Linear(I*D, I) and two unused mixer layers
    state.update({"cat.weight": torch.randn(54, 54 * 32), "cat.bias": torch.randn(54),
                  "blocks.reason.fc1.weight": torch.randn(20, 16), "blocks.reason.fc2.weight": torch.randn(16, 20)})
    return dataset, model, state


def test_a_state_dict_in_their_layout_scores_as_the_model_it_came_from(pair, tmp_path):
    dataset, model, state = pair
    path = tmp_path / "best_model.pth"
    torch.save({"model": state}, path)  # as their trainer saves it
    loaded = zslkit.create("converter", "psvma", source=path, class_attributes=dataset.class_attributes,
                           attribute_embeddings=dataset.attribute_embeddings, seen_classes=dataset.seen_classes,
                           unseen_classes=dataset.unseen_classes, num_heads=2).eval()
    images = torch.as_tensor(dataset.features[:5])
    with torch.no_grad():
        assert torch.equal(loaded(images).scores, model(images).scores)
    assert loaded.options["backbone_options"] == {**SHAPE} and loaded.options["adapters"]["dsvtm"]["groups"] == 6
    assert not any(k.startswith("cat") for k in loaded.state_dict())


def test_zslkit_eval_official_takes_it(pair, tmp_path, capsys):
    dataset, model, state = pair
    path = tmp_path / "best_model.pth"
    torch.save(state, path)
    options = [f"--dataset-option={k}={v}" for k, v in DATA.items()]
    assert main(["eval", str(path), "--official", "--official-model", "psvma", "--dataset", "synthetic_images", *options,
                 "--official-option", "num_heads=2"]) == 0
    table = capsys.readouterr().out
    expected = evaluate(model, dataset)
    row = next(line for line in table.splitlines() if line.startswith("| psvma (official)"))
    numbers = [float(x) for x in re.findall(r"\d+\.\d+", row)]
    assert numbers == [round(100 * expected[k], 1) for k in ("T1", "U", "S", "H", "AUSUC")]  # the model it came from


def test_a_foreign_or_inconsistent_state_dict_is_refused(pair):
    dataset, _, state = pair
    arguments = {"class_attributes": dataset.class_attributes, "attribute_embeddings": dataset.attribute_embeddings,
                 "seen_classes": dataset.seen_classes, "num_heads": 2}
    with pytest.raises(CheckpointError, match="not an official PSVMA state dict"):
        zslkit.create("converter", "psvma", source={"V": state["V"]}, **arguments)
    with pytest.raises(CheckpointError, match="unknown key 'extra.weight'"):
        zslkit.create("converter", "psvma", source={**state, "extra.weight": torch.zeros(1)}, **arguments)
