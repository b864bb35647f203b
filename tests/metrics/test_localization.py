"""The part-localisation metric: grid -> image mapping, hits on constructed maps, CUB metadata."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from zslkit.datasets.container import DatasetError
from zslkit.datasets.cub_parts import (
    BIRD_BOX,
    CUB_PARTS,
    cub_attribute_targets,
    load_cub_parts,
    read_bounding_boxes,
    read_part_locations,
    read_parts,
)
from zslkit.metrics import PartLocalization, grid_to_image, localization_counts, part_localization
from zslkit.metrics.localization import top_per_group, view_regions


# ----------------------------------------------------------------------------- geometry
def test_center_crop_inverse_matches_hand_computed_coordinates():
    # 500 x 375 image, 448 crop, crop_pct 1: height -> 448, width int(448 * 500 / 375) = 597,
    # left = round(149 / 2) = 74 (half to even), top = 0; 14 x 14 cells of 32 crop pixels.
    pre = {"input_size": [3, 448, 448], "crop_pct": 1.0, "crop_mode": "center"}
    cells = grid_to_image((14, 14), pre, [[500, 375]])
    assert cells.shape == (1, 196, 2)
    np.testing.assert_allclose(cells[0, 0], [(16 + 74) * 500 / 597, 16 * 375 / 448])
    np.testing.assert_allclose(cells[0, 13 * 14 + 13], [(432 + 74) * 500 / 597, 432 * 375 / 448])
    # 502 x 375: width int(599.7) = 599, left = round(75.5) = 76 (not the floor, 75)
    np.testing.assert_allclose(grid_to_image((14, 14), pre, [[502, 375]])[0, 0], [(16 + 76) * 502 / 599, 16 * 375 / 448])
    # crop_pct 0.875 at 224: shorter side -> 256; 300 x 400 -> 256 x int(341.33) = 341; left 16, top round(58.5) = 58
    pre = {"input_size": [3, 224, 224], "crop_pct": 0.875, "crop_mode": "center"}
    cells = grid_to_image((7, 7), pre, [[300, 400]])
    np.testing.assert_allclose(cells[0, 6 * 7 + 6], [(208 + 16) * 300 / 256, (208 + 58) * 400 / 341])
    np.testing.assert_allclose(cells[0, 1], [(48 + 16) * 300 / 256, (16 + 58) * 400 / 341])  # row 0, column 1
    np.testing.assert_allclose(view_regions(pre, [[300, 400]])[0], [16 * 300 / 256, 58 * 400 / 341, 240 * 300 / 256, 282 * 400 / 341])
    # squash: both sides to 224, no offset
    cells = grid_to_image((2, 2), {"input_size": [3, 224, 224], "crop_pct": 1.0, "crop_mode": "squash"}, [[100, 50]])
    np.testing.assert_allclose(cells[0], [[25, 12.5], [75, 12.5], [25, 37.5], [75, 37.5]])


def test_inverse_mapping_agrees_with_timms_transform_on_a_marked_image():
    """A bright square pushed through the real eval transform: the centroid of what comes out maps back onto it."""
    from zslkit.extract import preprocessing

    cases = [  # (crop size, crop_pct, (width, height), square centre pixel, half side)
        (64, 1.0, (530, 500), (300, 240), 10),  # width int(67.84) = 67: left = round(1.5) = 2
        (48, 0.875, (60, 90), (22, 58), 1),     # resized 54 x 81, top = round(13.5) = 14
        (64, 1.0, (100, 75), (70, 31), 1),      # upsampled
    ]
    for size, crop_pct, (width, height), (x, y), half in cases:
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[y - half : y + half + 1, x - half : x + half + 1] = 255  # centred on (x + 0.5, y + 0.5)
        transform, config = preprocessing(torch.nn.Identity(), size, crop_pct=crop_pct, interpolation="bilinear")
        out = transform(Image.fromarray(pixels))[0].numpy().astype(np.float64)
        weights = (out - out.min()).reshape(-1)
        cells = grid_to_image((size, size), config, [[width, height]])[0]  # one cell per crop pixel
        centroid = (weights[:, None] * cells).sum(axis=0) / weights.sum()
        crop_pixel = min(width, height) / math.floor(size / crop_pct)  # original pixels per crop pixel
        assert np.abs(centroid - [x + 0.5, y + 0.5]).max() <= 0.2 * max(crop_pixel, 1.0), (centroid, x, y)


def test_bad_preprocessing_is_named():
    with pytest.raises(ValueError, match="crop_mode 'border' is not supported"):
        grid_to_image((2, 2), {"input_size": [3, 8, 8], "crop_mode": "border"}, [[10, 10]])
    with pytest.raises(ValueError, match="input_size must be"):
        grid_to_image((2, 2), {"input_size": 8}, [[10, 10]])
    # no preprocessing recorded: the paper repositories' 448 resize + crop
    np.testing.assert_allclose(grid_to_image((1, 1), None, [[448, 448]])[0, 0], [224, 224])


# ------------------------------------------------------------------------ constructed maps
CELLS = np.array([[[10.0, 10.0], [30.0, 10.0], [10.0, 30.0], [30.0, 30.0]]])  # a 2 x 2 grid of one image
BOX = np.array([[0.0, 0.0, 40.0, 40.0]])


def one_hot_maps(peaks: list[int], cells: int = 4) -> torch.Tensor:
    maps = torch.zeros(1, len(peaks), cells)
    for i, p in enumerate(peaks):
        maps[0, i, p] = 1.0
    return maps


def parts_at(points: dict[int, tuple[float, float, int]], num: int = 3) -> np.ndarray:
    parts = np.zeros((1, num, 3))
    for p, (x, y, v) in points.items():
        parts[0, p] = (x, y, v)
    return parts


def test_pixel_threshold_edges_nearest_visible_part_and_exclusions():
    # parts: 0 beak at (10, 10); 1 left wing at (30, 30) invisible; 2 right wing at (30, 15)
    parts = parts_at({0: (10, 10, 1), 1: (30, 30, 0), 2: (30, 15, 1)})
    targets = [("beak", (0,)), ("beak", (0,)), ("wing", (1, 2)), ("wing", (1, 2)), (BIRD_BOX, ()), None, ("tail", (1,))]
    maps = one_hot_maps([0, 1, 1, 3, 2, 0, 3])
    counts = localization_counts(maps, CELLS, parts, BOX, targets, criterion="pixels", threshold=5.0)
    assert counts.targets == ["beak", "wing", BIRD_BOX, "tail"]
    # beak: peak on it (hit), 20 px off (miss); wing: right wing 5 px from cell 1 (hit: <= 5), the invisible
    # left wing under cell 3 does not count, the right wing is 15 px away (miss); box: inside; tail invisible.
    np.testing.assert_array_equal(counts.hits, [1, 1, 1, 0])
    np.testing.assert_array_equal(counts.pairs, [2, 2, 1, 0])
    np.testing.assert_array_equal(counts.excluded, [0, 0, 0, 1])
    # the box's edges count as inside: the box pair peaks on cell 2, (10, 30), the bottom edge of a 30-high box
    for height, expected in [(30.0, 1), (29.999, 0)]:
        edge = localization_counts(maps, CELLS, parts, np.array([[0.0, 0.0, 40.0, height]]), targets, criterion="pixels",
                                   threshold=5.0)
        assert edge.hits[2] == expected and edge.pairs[2] == 1
    just_below = localization_counts(maps, CELLS, parts, BOX, targets, criterion="pixels", threshold=4.999)
    np.testing.assert_array_equal(just_below.hits, [1, 0, 1, 0])
    summary = counts.summary()
    assert summary["overall"] == pytest.approx(3 / 5) and summary["excluded"] == 1
    assert summary["per_part"]["tail"] == {"fraction": None, "hits": 0, "pairs": 0, "excluded": 1}
    assert summary["mean_over_parts"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_top_per_group_selects_apns_pairs_and_the_rest_is_not_counted():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.5], [0.8, 0.2, 0.1, 0.7, 0.7]])
    groups = ["bill_shape", "bill_shape", "wing_color", "wing_color", "size"]
    chosen = top_per_group(scores, groups)
    np.testing.assert_array_equal(chosen, [[0, 1, 1, 0, 1], [1, 0, 0, 1, 1]])  # ties: the first
    parts = np.concatenate([parts_at({0: (10, 10, 1), 1: (30, 30, 0), 2: (30, 30, 0)})] * 2)
    targets = [("beak", (0,)), ("beak", (0,)), ("wing", (1, 2)), ("wing", (1, 2)), (BIRD_BOX, ())]
    maps = torch.cat([one_hot_maps([0, 1, 0, 0, 3])] * 2)
    counts = localization_counts(maps, np.concatenate([CELLS] * 2), parts, np.concatenate([BOX] * 2), targets,
                                 criterion="pixels", threshold=5.0, pairs=chosen)
    # image 0 scores attribute 1 (20 px off: miss), image 1 attribute 0 (on the beak: hit); the wings are invisible:
    # one excluded pair per image, not two; the box pair of each image hits
    np.testing.assert_array_equal(counts.hits, [1, 0, 2])
    np.testing.assert_array_equal(counts.pairs, [2, 0, 2])
    np.testing.assert_array_equal(counts.excluded, [0, 2, 0])
    with pytest.raises(ValueError, match=r"attribute_scores must be \(B, 4\)"):
        top_per_group(scores, groups[:4])


def test_pck_scales_with_the_longer_side_of_the_box():
    parts = parts_at({0: (10, 22, 1)})  # 12 px below cell 0
    targets = [("beak", (0,))]
    tall_box = np.array([[0.0, 0.0, 40.0, 120.0]])  # 0.1 * 120 = 12: hit
    assert localization_counts(one_hot_maps([0]), CELLS, parts, tall_box, targets, criterion="pck").hits.tolist() == [1]
    assert localization_counts(one_hot_maps([0]), CELLS, parts, BOX, targets, criterion="pck").hits.tolist() == [0]


def test_real_box_iou_by_hand_and_the_shift_into_the_view():
    """``apn``'s test with zslkit's alternatives (cell-centre peak, real boxes, exclusive bound), in original pixels."""
    zslkit_way = {"peak": "cell", "box": "real", "bound": "exclusive"}
    cells = np.array([[[10.0, 50.0], [50.0, 50.0]]])
    box = np.array([[0.0, 0.0, 90.0, 90.0]])  # scale 1: 90 x 90 boxes
    targets = [("beak", (0,))]
    for dx, expected in [(20.0, 1), (30.0, 0)]:  # dx 20: IoU 70/110 > 0.5; dx 30: IoU 60/120 = 0.5 exactly: miss
        parts = parts_at({0: (10 + dx, 50, 1)}, num=1)
        hits = localization_counts(one_hot_maps([0], 2), cells, parts, box, targets, box_scale=1.0, **zslkit_way).hits
        assert hits.tolist() == [expected], dx
    # 40 x 40 boxes (160 / 4): peak at x 10 -> [-10, 30], part at x 30 -> [10, 50]: IoU 20/60 (miss);
    # shifted into the view [0, 100]: [0, 40] and [10, 50], IoU 30/50 (hit)
    big = np.array([[0.0, 0.0, 160.0, 160.0]])
    parts = parts_at({0: (30, 50, 1)}, num=1)
    assert localization_counts(one_hot_maps([0], 2), cells, parts, big, targets, box_scale=4.0, **zslkit_way).hits.tolist() == [0]
    views = np.array([[0.0, 0.0, 100.0, 100.0]])
    assert localization_counts(one_hot_maps([0], 2), cells, parts, big, targets, box_scale=4.0, views=views,
                               **zslkit_way).hits.tolist() == [1]


def test_stateful_sum_equals_one_call_and_bad_shapes_are_named():
    rng = np.random.default_rng(0)
    n, grid = 6, (3, 3)
    cells = grid_to_image(grid, {"input_size": [3, 30, 30], "crop_pct": 1.0, "crop_mode": "center"}, rng.integers(30, 80, (n, 2)))
    parts = np.concatenate([rng.uniform(0, 60, (n, 3, 2)), rng.integers(0, 2, (n, 3, 1))], axis=-1)
    boxes = np.concatenate([rng.uniform(0, 10, (n, 2)), rng.uniform(20, 50, (n, 2))], axis=1)
    maps = torch.rand(n, 4, 9)
    targets = [("beak", (0,)), ("wing", (1, 2)), (BIRD_BOX, ()), None]
    metric = PartLocalization(targets, criterion="pck", threshold=0.3)
    metric.update(maps[:2], cells[:2], parts[:2], boxes[:2])
    metric.update(maps[2:], cells[2:], parts[2:], boxes[2:])
    assert metric.compute() == part_localization(maps, cells, parts, boxes, targets, criterion="pck", threshold=0.3)
    with pytest.raises(ValueError, match=r"maps must be \(B, I, H\*W\) with H\*W=9"):
        localization_counts(torch.rand(n, 4, 8), cells, parts, boxes, targets, criterion="pck")
    with pytest.raises(ValueError, match="attribute_targets has 3 entries, the maps 4 attributes"):
        localization_counts(maps, cells, parts, boxes, targets[:3])
    with pytest.raises(ValueError, match="criterion must be one of"):
        localization_counts(maps, cells, parts, boxes, targets, criterion="iou")


def brute_force_hits(maps, cells, parts, boxes, targets, threshold):
    """The pixel criterion written as plain loops: an independent statement of the metric."""
    hits, pairs = {}, {}
    for b in range(maps.shape[0]):
        for i, entry in enumerate(targets):
            if entry is None:
                continue
            name, candidates = entry
            peak = cells[b, int(np.argmax(maps[b, i]))]
            if not candidates:
                x, y, w, h = boxes[b]
                ok = x <= peak[0] <= x + w and y <= peak[1] <= y + h
            else:
                visible = [parts[b, p, :2] for p in candidates if parts[b, p, 2] > 0]
                if not visible:
                    continue
                ok = min(float(np.hypot(*(peak - v))) for v in visible) <= threshold
            hits[name] = hits.get(name, 0) + int(ok)
            pairs[name] = pairs.get(name, 0) + 1
    return hits, pairs


# --------------------------------------------------------------------------- real CUB metadata
def test_real_cub_part_files_and_attribute_mapping(shared_data):
    cub = shared_data("cub")
    assert read_parts(cub / "parts.txt") == list(CUB_PARTS)
    locations = read_part_locations(cub / "part_locs.txt")
    boxes = read_bounding_boxes(cub / "bounding_boxes.txt")
    assert locations.shape == (11788, 15, 3) and boxes.shape == (11788, 4)
    np.testing.assert_array_equal(locations[0, 1], [312.0, 182.0, 1.0])  # image 1, beak
    np.testing.assert_array_equal(boxes[0], [60.0, 27.0, 325.0, 304.0])
    assert 0.5 < locations[..., 2].mean() < 0.9  # most parts are visible, not all
    names = [line.split(" ", 1)[1] for line in (cub / "attributes.txt").read_text().splitlines()]
    targets = cub_attribute_targets(names)
    assert len(targets) == 312 and all(t is not None for t in targets)  # every attribute has a target
    by_target = {}
    for t in targets:
        by_target[t[0]] = by_target.get(t[0], 0) + 1
    assert by_target == {"beak": 27, "wing": 24, "upperparts": 15, "underparts": 15, "breast": 19, "back": 19, "tail": 40,
                         "head": 11, "throat": 15, "eye": 14, "forehead": 15, "nape": 15, "belly": 19, "crown": 15,
                         BIRD_BOX: 34, "leg": 15}
    dropped = cub_attribute_targets(names, exclude=("size", "shape", "primary_color"))
    assert sum(t is None for t in dropped) == 34
    with pytest.raises(ValueError, match="not a CUB attribute group"):
        cub_attribute_targets(names, exclude=("colour",))
    # matching to xlsa17's sorted image files needs images.txt, which is not among the shared files
    files = [str(f) for f in np.load(cub / "xlsa17_splits.npz")["image_files"]]
    with pytest.raises(DatasetError, match="no images.txt to match the part annotations"):
        load_cub_parts(cub, files)
    assert load_cub_parts(cub).num_images == 11788


def test_oracle_maps_on_real_cub_parts_hit_within_half_a_cell(shared_data):
    """Maps peaking on the cell that holds each visible part hit it within half a cell's diagonal."""
    cub = shared_data("cub")
    parts = load_cub_parts(cub).take(np.arange(0, 11788, 97))
    names = [line.split(" ", 1)[1] for line in (cub / "attributes.txt").read_text().splitlines()]
    targets = cub_attribute_targets(names, exclude=("size", "shape", "primary_color"))
    sizes = np.ceil(np.maximum(parts.boxes[:, :2] + parts.boxes[:, 2:], parts.locations[..., :2].max(axis=1)) + 1)
    pre, grid = {"input_size": [3, 448, 448], "crop_pct": 1.0, "crop_mode": "squash"}, (14, 14)
    cells = grid_to_image(grid, pre, sizes)
    n, cell_w, cell_h = len(sizes), sizes[:, 0] / 14, sizes[:, 1] / 14
    maps = np.zeros((n, len(names), 196), dtype=np.float32)
    first_visible = np.zeros((n, len(names), 2))
    for b in range(n):
        for i, t in enumerate(targets):
            if t is None:
                continue
            seen = [p for p in t[1] if parts.locations[b, p, 2] > 0] or list(t[1])
            x, y = parts.locations[b, seen[0], :2]
            first_visible[b, i] = x, y
            maps[b, i, int(min(y // cell_h[b], 13)) * 14 + int(min(x // cell_w[b], 13))] = 1.0
    half_diagonal = float(np.hypot(cell_w, cell_h).max() / 2)
    counts = localization_counts(torch.from_numpy(maps), cells, parts.locations, parts.boxes, targets,
                                 criterion="pixels", threshold=half_diagonal)
    assert counts.hits.sum() == counts.pairs.sum() > 10000
    assert counts.excluded.sum() > 0
    hits, pairs = brute_force_hits(maps, cells, parts.locations, parts.boxes, targets, threshold=half_diagonal / 4)
    quarter = localization_counts(torch.from_numpy(maps), cells, parts.locations, parts.boxes, targets,
                                  criterion="pixels", threshold=half_diagonal / 4)
    assert dict(zip(quarter.targets, quarter.hits.tolist())) == hits
    assert dict(zip(quarter.targets, quarter.pairs.tolist())) == pairs
    assert 0 < quarter.hits.sum() < quarter.pairs.sum()


def test_part_file_readers_name_what_is_wrong(tmp_path):
    folder = tmp_path / "CUB_200_2011"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "parts.txt").write_text("1 beak\n2 left wing\n")
    (folder / "bounding_boxes.txt").write_text("2 1 1 5 5\n1 0 0 10 8\n")  # any line order
    locs = folder / "parts" / "part_locs.txt"
    locs.write_text("1 1 3 4 1\n1 2 0 0 0\n2 1 5 6 1\n2 2 7 8 1\n")
    (folder / "images.txt").write_text("1 001.A/b.jpg\n2 001.A/a.jpg\n")
    parts = load_cub_parts(folder)
    assert parts.part_names == ["beak", "left wing"] and parts.boxes[0].tolist() == [0, 0, 10, 8]
    # xlsa17's sorted order: image a (id 2) first
    ordered = load_cub_parts(folder, ["/BS/x/CUB_200_2011/images/001.A/a.jpg", "/BS/x/CUB_200_2011/images/001.A/b.jpg"])
    np.testing.assert_array_equal(ordered.locations[:, 0], [[5, 6, 1], [3, 4, 1]])
    assert ordered.image_files == ["001.A/a.jpg", "001.A/b.jpg"]
    with pytest.raises(DatasetError, match="1 of the dataset's 1 images are not in images.txt .*'001.A/c.jpg'"):
        load_cub_parts(folder, ["/x/images/001.A/c.jpg"])
    locs.write_text("1 1 3 4 1\n1 1 0 0 0\n2 1 5 6 1\n2 2 7 8 1\n")
    with pytest.raises(DatasetError, match="image id 1, part id 1 appears twice"):
        read_part_locations(locs, 2)
    locs.write_text("1 1 3 4 2\n1 2 0 0 0\n2 1 5 6 1\n2 2 7 8 1\n")
    with pytest.raises(DatasetError, match="the visible column must hold 0 or 1"):
        read_part_locations(locs, 2)
    locs.write_text("1 1 3 4 1\n1 2 0 0 0\n2 1 5 6 1\n")
    with pytest.raises(DatasetError, match="3 lines is not a multiple of the 2 parts"):
        read_part_locations(locs, 2)
    (folder / "bounding_boxes.txt").write_text("1 0 0 10 8\n3 1 1 5 5\n")
    with pytest.raises(DatasetError, match="image ids must be 1..2, each once .id 2 is missing"):
        read_bounding_boxes(folder / "bounding_boxes.txt")
    with pytest.raises(DatasetError, match="no parts.txt .looked in .*; give the CUB_200_2011 folder"):
        load_cub_parts(tmp_path)
