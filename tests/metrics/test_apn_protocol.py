"""APN's localisation protocol as its code does it: OpenCV's bilinear upsampling, the top pixel, integer
boxes, the [0, 223] bound and its attribute-to-part mapping; each against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zslkit.datasets.cub_parts import APN_CUB_PARTS, CUB_GROUP_TARGETS, CUB_PARTS, cub_attribute_targets
from zslkit.metrics import localization_counts
from zslkit.metrics.localization import (
    APN_PROTOCOL,
    CRITERION_DEFAULTS,
    grid_to_image,
    upsample_bilinear,
    view_regions,
)

CROP = {"input_size": [3, 224, 224], "crop_pct": 1.0, "crop_mode": "squash"}  # original pixels = crop pixels


def test_upsample_matches_a_hand_computed_case_and_the_border_plateaus():
    # 2 -> 4 with half-pixel centres: outputs read the input at -0.25, 0.25, 0.75, 1.25 (clamped at the ends)
    maps = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = torch.tensor([[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5], [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]])
    torch.testing.assert_close(upsample_bilinear(maps, (4, 4)), expected, rtol=0, atol=0)
    # a one-hot 7 x 7 map at row 3, column 0, to 224: pixel rows 111 and 112 both read row 3 with weight 63/64
    # (the first wins); pixel columns 0..15 read column 0 alone (clamped): the top pixel is (row 111, column 0)
    one_hot = torch.zeros(7, 7)
    one_hot[3, 0] = 1.0
    up = upsample_bilinear(one_hot, (224, 224))
    assert up[111, 0] == up[112, 0] == 63 / 64 and (up[:, :16] == up[:, :1]).all()
    assert divmod(int(up.argmax()), 224) == (111, 0)


def test_upsample_agrees_with_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for trial in range(40):
        h, w = rng.integers(1, 15, 2)
        maps = rng.random((h, w)).astype(np.float32)
        if trial % 4 == 0:
            maps = np.round(maps * 3) / 3  # exact ties
        size = (int(rng.integers(1, 260)), int(rng.integers(1, 260)))
        theirs = cv2.resize(maps, (size[1], size[0]))  # dsize is (width, height); INTER_LINEAR by default
        ours = upsample_bilinear(torch.from_numpy(maps), size).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
        a, b = int(ours.argmax()), int(theirs.argmax())
        assert a == b or abs(float(theirs.flat[a]) - float(theirs.flat[b])) <= 2e-6  # only float32 near-ties may differ


# ------------------------------------------------------------------ APN's boxes, computed as plain integers
def apn_box(centre: float, side: int, upper: int) -> tuple[float, float]:
    """One axis of APN's box: [c - int(side / 2), c + int(side / 2)], shifted to [0, side] or [upper - side, upper]."""
    low, high = centre - int(side / 2), centre + int(side / 2)
    if low < 0:
        return 0, side
    if high > upper:
        return upper - side, upper
    return low, high


def apn_iou(peak, part, bird_wh, scale=1.4, upper=223) -> float:
    sides = [int(bird_wh[0] / scale), int(bird_wh[1] / scale)]
    (ax, bx), (ay, by) = (apn_box(peak[k], sides[k], upper) for k in (0, 1))
    (cx, dx), (cy, dy) = (apn_box(part[k], sides[k], upper) for k in (0, 1))
    width, height = min(bx, dx) - max(ax, cx), min(by, dy) - max(ay, cy)
    inter = 0 if width < 0 or height < 0 else width * height
    return inter / ((bx - ax) * (by - ay) + (dx - cx) * (dy - cy) - inter)


def hits_at(cell: tuple[int, int], part: tuple[float, float], bird_wh, threshold: float, **options) -> int:
    """Hits (0 or 1) of one 7 x 7 one-hot map peaking at ``cell`` (row, column), on a 224 px image = crop."""
    maps = torch.zeros(1, 1, 7, 7)
    maps[0, 0, cell[0], cell[1]] = 1.0
    cells = grid_to_image((7, 7), CROP, [[224, 224]])
    parts = np.array([[[part[0], part[1], 1.0]]])
    boxes = np.array([[0.0, 0.0, bird_wh[0], bird_wh[1]]])
    counts = localization_counts(maps, cells, parts, boxes, [("beak", (0,))], criterion="apn", threshold=threshold,
                                 views=view_regions(CROP, [[224, 224]]), crop_size=(224, 224), **options)
    return int(counts.hits[0])


def test_left_edge_the_peak_is_the_top_pixel_of_the_upsampled_map():
    # cell (3, 0): APN's peak is pixel (x 0, y 111); boxes 71 x 71 (int(100 / 1.4)), half 35. Peak box
    # x [-35, 35] -> [0, 71], y [76, 146]; part (60, 111): x [25, 95], y [76, 146]: IoU 46*70 / (71*70 + 70*70 - 3220)
    iou = 46 * 70 / (71 * 70 + 70 * 70 - 46 * 70)
    assert iou == pytest.approx(apn_iou((0, 111), (60, 111), (100, 100)))
    assert hits_at((3, 0), (60, 111), (100, 100), iou - 1e-9) == 1
    assert hits_at((3, 0), (60, 111), (100, 100), iou) == 0  # IoU > threshold, strictly
    # the centre of the cell, (16, 112): the peak box's rows move to [77, 147]: IoU 46*69 / (4970 + 4900 - 46*69)
    cell_iou = 46 * 69 / (71 * 70 + 70 * 70 - 46 * 69)
    assert cell_iou < iou - 0.005
    assert hits_at((3, 0), (60, 111), (100, 100), cell_iou - 1e-9, peak="cell") == 1
    assert hits_at((3, 0), (60, 111), (100, 100), cell_iou + 1e-9, peak="cell") == 0


def test_right_edge_boxes_are_shifted_into_0_223():
    # cell (3, 6): pixels 208..223 read column 6 alone: the peak is x 208, y 111. Peak box x [173, 243]; part (189, 111)
    # x [154, 224]. Bound 223: both shift to [152, 223], IoU 1. Bound 224: [153, 224] and [154, 224], IoU 4900 / 4970.
    assert apn_iou((208, 111), (189, 111), (100, 100)) == 1.0
    exclusive = 70 * 70 / (71 * 70 + 70 * 70 - 70 * 70)
    assert exclusive == pytest.approx(apn_iou((208, 111), (189, 111), (100, 100), upper=224))
    assert hits_at((3, 6), (189, 111), (100, 100), 0.99) == 1
    assert hits_at((3, 6), (189, 111), (100, 100), exclusive - 1e-9, bound="exclusive") == 1
    assert hits_at((3, 6), (189, 111), (100, 100), 0.99, bound="exclusive") == 0


def test_top_edge_box_sides_are_truncated_to_integers():
    # a 100 x 60 bird: boxes 71 x 42 (int(42.86)), half-height 21. Peak (111, 0): y [-21, 21] -> [0, 42], x [76, 146];
    # part (111, 30): y [9, 51]: IoU 70*33 / (70*42 * 2 - 70*33). Real sides 71.43 x 42.86: IoU 34.29 / 51.43 = 2/3.
    integer = 70 * 33 / (2 * 70 * 42 - 70 * 33)
    assert integer == pytest.approx(apn_iou((111, 0), (111, 30), (100, 60)))
    real = (60 / 1.4 - 30 + 60 / 2.8) / (60 / 1.4 + 30 + 60 / 2.8 - 60 / 1.4)  # overlap / union of the rows alone
    assert real == pytest.approx(2 / 3)
    assert hits_at((0, 3), (111, 30), (100, 60), integer - 1e-9) == 1
    assert hits_at((0, 3), (111, 30), (100, 60), 0.66) == 0
    assert hits_at((0, 3), (111, 30), (100, 60), 0.66, box="real") == 1
    assert hits_at((0, 3), (111, 30), (100, 60), real + 1e-9, box="real") == 0


def test_bottom_edge_rows_pair_with_the_birds_height():
    # peak (111, 208): y [187, 229] -> [181, 223] (bound 223) or [182, 224] (bound 224); part (111, 200): y [179, 221]
    inclusive, exclusive = 70 * 40 / (2 * 70 * 42 - 70 * 40), 70 * 39 / (2 * 70 * 42 - 70 * 39)
    assert inclusive == pytest.approx(apn_iou((111, 208), (111, 200), (100, 60)))
    assert exclusive == pytest.approx(apn_iou((111, 208), (111, 200), (100, 60), upper=224))
    assert hits_at((6, 3), (111, 200), (100, 60), inclusive - 1e-9) == 1
    assert hits_at((6, 3), (111, 200), (100, 60), inclusive) == 0
    assert hits_at((6, 3), (111, 200), (100, 60), exclusive - 1e-9, bound="exclusive") == 1
    assert hits_at((6, 3), (111, 200), (100, 60), exclusive, bound="exclusive") == 0


def test_the_protocols_defaults_and_bad_options():
    assert CRITERION_DEFAULTS["apn"] is APN_PROTOCOL
    assert APN_PROTOCOL == {"mapping": "apn", "peak": "upsampled", "box": "integer", "bound": "inclusive"}
    assert CRITERION_DEFAULTS["pck"]["peak"] == "cell" and CRITERION_DEFAULTS["pixels"]["mapping"] == "field-guide"
    with pytest.raises(ValueError, match="peak must be one of"):
        hits_at((3, 3), (111, 111), (100, 100), 0.5, peak="max")
    with pytest.raises(ValueError, match="peak='upsampled' needs crop_size"):
        localization_counts(torch.zeros(1, 1, 2, 2), np.zeros((1, 4, 2)), np.zeros((1, 1, 3)), np.ones((1, 4)),
                            [("beak", (0,))])


# ------------------------------------------------------------------------------------ the mapping
def test_apns_mapping_of_cub_groups_to_its_parts():
    names = [f"has_{group}::x" for group in CUB_GROUP_TARGETS]
    apn = dict(zip(CUB_GROUP_TARGETS, cub_attribute_targets(names, mapping="apn")))
    head = tuple(CUB_PARTS.index(p) for p in ("beak", "crown", "forehead", "left eye", "right eye", "nape"))
    for group in ("bill_shape", "bill_color", "eye_color", "crown_color", "forehead_color", "nape_color", "head_pattern"):
        assert apn[group] == ("head", head), group
    assert apn["throat_color"] == ("breast", (CUB_PARTS.index("breast"), CUB_PARTS.index("throat")))
    assert apn["underparts_color"] == ("belly", (CUB_PARTS.index("belly"),))
    assert apn["upperparts_color"] == ("back", (CUB_PARTS.index("back"),))
    assert apn["size"] is apn["shape"] is apn["primary_color"] is None
    assert sorted(g for groups in APN_CUB_PARTS.values() for g in groups) == sorted(CUB_GROUP_TARGETS)  # each group once
    field_guide = dict(zip(CUB_GROUP_TARGETS, cub_attribute_targets(names)))
    assert field_guide["throat_color"] == ("throat", (CUB_PARTS.index("throat"),))
    with pytest.raises(ValueError, match="mapping must be one of"):
        cub_attribute_targets(names, mapping="apn8")


def test_apns_mapping_on_the_real_cub_attributes(shared_data):
    names = [line.split(" ", 1)[1] for line in (shared_data("cub") / "attributes.txt").read_text().splitlines()]
    counts: dict[str | None, int] = {}
    for target in cub_attribute_targets(names, mapping="apn"):
        counts[None if target is None else target[0]] = counts.get(None if target is None else target[0], 0) + 1
    # head: bill 9 + 3 + 15, eye 14, head pattern 11, crown, forehead, nape 15 each; left out: size 5, shape 14, primary 15
    assert counts == {"head": 97, "breast": 34, "belly": 34, "back": 34, "wing": 24, "tail": 40, "leg": 15, None: 34}


def test_a_throat_map_on_the_breast_hits_under_apns_mapping_only():
    names = ["has_throat_color::red"]
    parts = np.zeros((1, len(CUB_PARTS), 3))
    parts[0, CUB_PARTS.index("breast")] = (48, 48, 1)
    parts[0, CUB_PARTS.index("throat")] = (144, 144, 1)
    maps = torch.zeros(1, 1, 7, 7)
    maps[0, 0, 1, 1] = 1.0  # cell centre (48, 48): on the breast
    common = dict(criterion="pixels", threshold=1.0)
    cells = grid_to_image((7, 7), CROP, [[224, 224]])
    box = np.array([[0.0, 0.0, 224.0, 224.0]])
    for mapping, expected in (("apn", 1), ("field-guide", 0)):
        targets = cub_attribute_targets(names, mapping=mapping)
        assert localization_counts(maps, cells, parts, box, targets, **common).hits.tolist() == [expected]
