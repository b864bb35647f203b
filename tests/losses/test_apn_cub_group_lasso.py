"""APN's CUB group lasso as the authors' code runs it (``parts[:7]``: belly twice, back and others never), in
``configs/apn/cub.yaml``, against a plain computation; zslkit's 28-group form stays the model's default."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zslkit
from zslkit.datasets.attribute_groups import groups_from_names
from zslkit.datasets.cub_parts import APN_CUB_PARTS, CUB_GROUP_TARGETS
from zslkit.training import load_config

#: Two values of every CUB attribute group, in CUB's group order: 56 attributes.
NAMES = [f"has_{group}::v{k}" for group in CUB_GROUP_TARGETS for k in range(2)]
#: The authors' list (model/main.py) and the loop over its first seven entries (model/main_utils.py Loss_fn).
AUTHORS_PARTS = ["head", "belly", "breast", "belly", "wing", "tail", "leg", "others"]


def plain_glasso(weights: torch.Tensor, attribute_lists) -> torch.Tensor:
    """sum over the lists of sqrt(sum_c (sum_{i in list} w_ic^2 + 1e-8)), written out per list and channel."""
    total = torch.zeros((), dtype=torch.float64)
    w = weights.detach().double()
    for members in attribute_lists:
        per_channel = [sum(float(w[i, c]) ** 2 for i in members) + 1e-8 for c in range(w.shape[1])]
        total = total + float(np.sqrt(sum(per_channel)))
    return total


def apn_from(options):
    rng = np.random.default_rng(0)
    groups = groups_from_names(NAMES)
    return zslkit.create_model("apn", class_attributes=rng.random((6, len(NAMES))), seen_classes=[0, 1, 2, 3],
                               feature_dim=5, attribute_groups=groups, **options)


def test_the_cub_recipe_runs_the_authors_seven_part_loop():
    torch.manual_seed(0)
    net = apn_from(load_config("apn/cub").model_options)
    out = net(torch.randn(3, 5, 2, 2))
    terms = net.loss(out, torch.tensor([0, 1, 3]))
    # each of the authors' parts: every attribute whose CUB group (its name's has_<group>) the part holds
    by_part = {part: [i for i, n in enumerate(NAMES) if n[4:].split("::")[0] in groups] for part, groups in APN_CUB_PARTS.items()}
    lists = [by_part[part] for part in AUTHORS_PARTS[:7]]
    assert [len(x) for x in lists] == [16, 6, 6, 6, 6, 8, 2]  # head 8 groups; belly (twice), breast 3; wing 3; tail 4; leg 1
    for branch in ("global", "local"):
        weights = out.constants[branch]["weights"]
        torch.testing.assert_close(terms[f"regular_{branch}"].double(), plain_glasso(weights, lists), rtol=1e-5, atol=1e-6)
        every_group = [[2 * g, 2 * g + 1] for g in range(len(CUB_GROUP_TARGETS))]
        assert abs(float(terms[f"regular_{branch}"].detach()) - float(plain_glasso(weights, every_group))) > 1e-3
    # the other terms and every weight are the model's defaults: only the lasso's grouping differs
    default = apn_from({})
    assert default.loss_weights == net.loss_weights
    for name, spec in default.options["losses"].items():
        mine = dict(net.options["losses"][name])
        mine.pop("merge", None), mine.pop("groups", None)
        assert mine == {k: v for k, v in spec.items() if k not in ("merge", "groups")}, name


def test_the_models_default_is_one_term_per_cub_group():
    torch.manual_seed(0)
    net = apn_from({})
    out = net(torch.randn(3, 5, 2, 2))
    terms = net.loss(out, torch.tensor([0, 1, 3]))
    every_group = [[2 * g, 2 * g + 1] for g in range(len(CUB_GROUP_TARGETS))]
    torch.testing.assert_close(terms["regular_local"].double(), plain_glasso(out.constants["local"]["weights"], every_group),
                               rtol=1e-5, atol=1e-6)


def test_the_recipes_regrouping_is_the_packaged_table_and_bad_merges_are_named():
    merge = load_config("apn/cub").model_options["losses"]["regular_local"]["merge"]
    assert {part: tuple(groups) for part, groups in merge.items()} == APN_CUB_PARTS
    net = apn_from({"losses": {"lasso": {"loss": "attribute_decorrelation", "merge": {"head": ["bill_shape", "beak_size"]},
                                         "groups": ["head"]}}})
    with pytest.raises(KeyError, match="merge\\['head'\\] names group 'beak_size', which the class space lacks"):
        net.loss(net(torch.randn(1, 5, 2, 2)), torch.tensor([0]))
