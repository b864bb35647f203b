"""Part localisation against hand-written expectations: which parts each CUB group targets, an oracle
whose peaks are placed from that hand-written table (not from the mapping under test), APN's
``top_per_group`` selection with groups of several attributes, and the shift of boxes into the view
at every edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zslkit.datasets import ZSLDataset
from zslkit.datasets.attribute_groups import groups_from_names
from zslkit.datasets.cub_parts import CUB_GROUP_TARGETS, CUBParts, cub_attribute_targets
from zslkit.metrics import localization_counts
from zslkit.models.output import ModelOutput
from zslkit.training.localization import evaluate_localization

#: parts.txt of CUB-200-2011, in id order, written out
PARTS = ["back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing", "nape",
         "right eye", "right leg", "right wing", "tail", "throat"]
WINGS, EYES, LEGS = {"left wing", "right wing"}, {"left eye", "right eye"}, {"left leg", "right leg"}
#: group -> (target, the parts it may hit; empty: the bird box), as the module documents its choices
TABLE = {
    "bill_shape": ("beak", {"beak"}), "bill_length": ("beak", {"beak"}), "bill_color": ("beak", {"beak"}),
    "wing_color": ("wing", WINGS), "wing_shape": ("wing", WINGS), "wing_pattern": ("wing", WINGS),
    "eye_color": ("eye", EYES), "leg_color": ("leg", LEGS),
    "head_pattern": ("head", {"beak", "crown", "forehead", "left eye", "right eye", "nape"}),
    "crown_color": ("crown", {"crown"}), "forehead_color": ("forehead", {"forehead"}), "nape_color": ("nape", {"nape"}),
    "throat_color": ("throat", {"throat"}), "breast_color": ("breast", {"breast"}), "breast_pattern": ("breast", {"breast"}),
    "belly_color": ("belly", {"belly"}), "belly_pattern": ("belly", {"belly"}),
    "back_color": ("back", {"back"}), "back_pattern": ("back", {"back"}),
    "tail_shape": ("tail", {"tail"}), "tail_pattern": ("tail", {"tail"}),
    "upper_tail_color": ("tail", {"tail"}), "under_tail_color": ("tail", {"tail"}),
    "upperparts_color": ("upperparts", {"back", "nape"} | WINGS),
    "underparts_color": ("underparts", {"throat", "breast", "belly"}),
    "size": ("bird box", set()), "shape": ("bird box", set()), "primary_color": ("bird box", set()),
}
NAMES = [f"has_{group}::value" for group in TABLE]


def test_every_cub_group_targets_the_hand_listed_parts():
    assert set(CUB_GROUP_TARGETS) == set(TABLE)
    shuffled = [PARTS[i] for i in np.random.default_rng(0).permutation(len(PARTS))]  # indices follow part_names
    for part_names in (PARTS, shuffled):
        targets = cub_attribute_targets(NAMES, part_names)
        for (group, (target, parts)), (name, indices) in zip(TABLE.items(), targets):
            assert name == target, group
            assert {part_names[i] for i in indices} == parts and len(indices) == len(parts), group


def test_real_cub_attribute_names_map_by_their_group(shared_data):
    names = [line.split(" ", 1)[1] for line in (shared_data("cub") / "attributes.txt").read_text().splitlines()]
    for name, (target, indices) in zip(names, cub_attribute_targets(names)):
        group = name.split("::")[0].removeprefix("has_")
        assert (target, {PARTS[i] for i in indices}) == TABLE[group], name


def test_oracle_peaks_placed_from_the_hand_table_hit_exactly_the_listed_parts():
    """Image ``p`` has every map peaking on part ``p``: a pair hits iff the table lists part ``p`` for its group.

    A 400 x 400 image, a 4 x 4 grid of 100-pixel cells whose centres are written out; part ``p`` sits
    on the centre of cell ``p`` (all visible), the bird box covers the first three columns.
    """
    centres = np.array([[(c + 0.5) * 100, (r + 0.5) * 100] for r in range(4) for c in range(4)])
    n = len(PARTS)
    cells = np.repeat(centres[None], n, axis=0)
    parts = np.repeat(np.concatenate([centres[:n], np.ones((n, 1))], axis=1)[None], n, axis=0)
    boxes = np.repeat(np.array([[0.0, 0.0, 300.0, 400.0]]), n, axis=0)
    maps = torch.zeros(n, len(NAMES), 16)
    for p in range(n):
        maps[p, :, p] = 1.0
    counts = localization_counts(maps, cells, parts, boxes, cub_attribute_targets(NAMES), criterion="pixels", threshold=1.0)
    hits, pairs = {}, {}
    for target, listed in TABLE.values():
        for p, part in enumerate(PARTS):
            inside = centres[p, 0] < 300
            hits[target] = hits.get(target, 0) + int(part in listed if listed else inside)
            pairs[target] = pairs.get(target, 0) + 1
    assert dict(zip(counts.targets, counts.hits.tolist())) == hits
    assert dict(zip(counts.targets, counts.pairs.tolist())) == pairs


# ------------------------------------------------------------------ top_per_group through evaluate_localization
GROUPED = ["has_bill_color::black", "has_bill_color::red", "has_bill_color::blue", "has_wing_color::blue",
           "has_wing_color::red", "has_size::small"]
#: per image, the attribute scores: bill colour (0-2), wing colour (3, 4), size (5); ties go to the first
SCORES = torch.tensor([[0.9, 0.1, 0.2, 0.2, 0.8, 0.5],
                       [0.1, 0.9, 0.2, 0.7, 0.3, 0.5],
                       [0.5, 0.5, 0.1, 0.4, 0.4, 0.5],
                       [0.1, 0.2, 0.3, 0.1, 0.9, 0.5]])
#: the peak cell of each attribute's map (2 x 2 grid): 0 on the beak, 3 on the right wing, 1 elsewhere; size on 2
PEAKS = [0, 1, 1, 3, 1, 2]


class TableModel(torch.nn.Module):
    """Reads the image index from its features and returns that image's row of SCORES and maps peaking at PEAKS."""

    def forward(self, x):
        rows = x[:, 0, 0, 0].round().long()
        maps = torch.zeros(len(rows), len(PEAKS), 4)
        maps[:, torch.arange(len(PEAKS)), torch.tensor(PEAKS)] = 1.0
        return ModelOutput(scores=torch.zeros(len(rows), 2), attribute_scores={"b": SCORES[rows]}, maps={"b": maps}, grid=(2, 2))


def small_dataset(names, n, **fields):
    """``n`` test-unseen images of class 1, then one trainval and one test-seen image of class 0."""
    return ZSLDataset("cubish", labels=[1] * n + [0, 0], class_attributes=np.ones((2, len(names))),
                      splits={"test_unseen": np.arange(n), "trainval": [n], "test_seen": [n + 1]},
                      attribute_names=names, **fields)


def test_top_per_group_scores_the_top_attribute_of_each_multi_attribute_group():
    n = len(SCORES)
    features = np.repeat(np.arange(n + 2, dtype=np.float32), 4).reshape(n + 2, 1, 2, 2)
    dataset = small_dataset(GROUPED, n, features=features)
    locations = np.zeros((n + 2, 15, 3))
    locations[:, 1] = 16, 16, 1  # beak on cell 0 (64 x 64 images squashed: cell centres 16 and 48)
    locations[:, 12] = 48, 48, 1  # right wing on cell 3; the left wing is not visible
    parts = CUBParts(PARTS, locations, np.repeat([[0.0, 0.0, 40.0, 64.0]], n + 2, axis=0))  # cell 2 (16, 48) is inside
    options = dict(preprocessing={"input_size": [3, 64, 64], "crop_pct": 1.0, "crop_mode": "squash"},
                   image_sizes=[[64, 64]] * (n + 2), criterion="pixels", threshold=1.0)
    top = evaluate_localization(TableModel(), dataset, parts, attributes="top_per_group", **options)["branches"]["b"]
    every = evaluate_localization(TableModel(), dataset, parts, **options)["branches"]["b"]
    # bill colour: attribute 0 (on the beak) is the top of its group in images 0 and 2 (a tie, the first wins)
    # wing colour: attribute 3 (on the wing) is the top in images 1 and 2 (a tie); size: every image, inside the box
    assert {t: (v["hits"], v["pairs"]) for t, v in top["per_part"].items()} == {"beak": (2, 4), "wing": (2, 4), "bird box": (4, 4)}
    assert {t: (v["hits"], v["pairs"]) for t, v in every["per_part"].items()} == {"beak": (4, 12), "wing": (4, 8), "bird box": (4, 4)}


def test_names_of_which_only_some_are_group_value_give_no_groups():
    """No partial grouping is guessed: the dataset then has no groups (a loss needing them says so)."""
    mixed = ["has_bill_color::black", "has_bill_color::red", "wing colour", "has_size::small"]
    assert groups_from_names(mixed) is None
    assert groups_from_names(GROUPED) == {"bill_color": [0, 1, 2], "wing_color": [3, 4], "size": [5]}
    dataset = small_dataset(mixed, 2, global_features=np.ones((4, 3)))
    assert dataset.attribute_groups is None
    with pytest.raises(ValueError, match="attribute 2 'wing colour' is not a CUB attribute"):
        cub_attribute_targets(mixed)


# ------------------------------------------------------------------ APN boxes shifted into the view, every edge
@pytest.mark.parametrize("edge", ["left", "right", "top", "bottom"])
def test_boxes_are_shifted_into_the_view_at_every_edge(edge):
    """40 x 40 boxes (a 160 bird box / 4) in the view [5, 7] - [105, 107]: the peak 10 px inside an edge,
    the part 30 px inside. Unshifted they overlap by 20 of 40 (IoU 20/60: miss); the peak's box moved
    inside, by 30 (IoU 30/50: hit)."""
    x0, y0, x1, y1 = 5.0, 7.0, 105.0, 107.0
    centre = {"left": ((x0 + 10, 57), (x0 + 30, 57)), "right": ((x1 - 10, 57), (x1 - 30, 57)),
              "top": ((55, y0 + 10), (55, y0 + 30)), "bottom": ((55, y1 - 10), (55, y1 - 30))}[edge]
    (peak, part) = centre
    cells = np.array([[peak, (55.0, 57.0)]])
    parts = np.array([[[*part, 1.0]]])
    box = np.array([[0.0, 0.0, 160.0, 160.0]])
    maps = torch.tensor([[[1.0, 0.0]]])
    run = dict(box_scale=4.0, criterion="apn")
    assert localization_counts(maps, cells, parts, box, [("beak", (0,))], **run).hits.tolist() == [0]
    views = np.array([[x0, y0, x1, y1]])
    assert localization_counts(maps, cells, parts, box, [("beak", (0,))], views=views, **run).hits.tolist() == [1]
    # the part's box is shifted too: a part 10 px inside the same edge as the peak is a perfect match
    parts_at_edge = np.array([[[*peak, 1.0]]])
    assert localization_counts(maps, cells, parts_at_edge, box, [("beak", (0,))], views=views, threshold=0.999, **run).hits.tolist() == [1]
