"""``zslkit eval RUN --localization`` end to end: real JPEGs -> store -> 1-epoch MSDN -> part files -> numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.datasets.conftest import make_tiny_xlsa17, write_jpeg
from zslkit.cli import main
from zslkit.datasets import load_xlsa17
from zslkit.datasets.cub_parts import CUB_PARTS

NAMES = ["has_bill_color::black", "has_wing_color::blue", "has_eye_color::red", "has_size::small_(5_-_9_in)",
         "has_tail_shape::fan-shaped_tail", "has_crown_color::grey"]
#: attribute -> (target, parts) as zslkit.datasets.cub_parts maps these groups
TARGETS = {0: ("beak", [1]), 1: ("wing", [8, 12]), 2: ("eye", [6, 10]), 3: ("bird box", []), 4: ("tail", [13]), 5: ("crown", [4])}


def cell_centre(width: int, height: int, cell: int, size: int = 64, grid: int = 2) -> tuple[float, float]:
    """Cell ``cell`` of a ``grid`` x ``grid`` map of a ``size`` crop (shorter side resized, centre crop), in image pixels."""
    new_w, new_h = (size, int(size * height / width)) if width <= height else (int(size * width / height), size)
    left, top = round((new_w - size) / 2), round((new_h - size) / 2)
    r, c = divmod(cell, grid)
    u, v = (c + 0.5) * size / grid, (r + 0.5) * size / grid
    return (u + left) * width / new_w, (v + top) * height / new_h


def expected_counts(maps, order, sizes, locations, grid: int = 2):
    """Per target: hits, judged pairs, excluded pairs of ``maps`` (rows: images ``order``; cells: a ``grid`` x ``grid``
    map of a 64 px crop), by plain loops."""
    hits, pairs, excluded = {}, {}, {}
    for row, image in enumerate(order):
        w, h = sizes[image]
        for attribute, (target, candidates) in TARGETS.items():
            peak = np.array(cell_centre(w, h, int(maps[row, attribute].argmax()), grid=grid))
            if not candidates:
                ok = 1.0 <= peak[0] <= w - 2 and 2.0 <= peak[1] <= h - 2
            else:
                visible = [locations[image, p, :2] for p in candidates if locations[image, p, 2]]
                if not visible:
                    excluded[target] = excluded.get(target, 0) + 1
                    continue
                ok = min(np.hypot(*(peak - v)) for v in visible) <= 15
            hits[target] = hits.get(target, 0) + int(ok)
            pairs[target] = pairs.get(target, 0) + 1
    return hits, pairs, excluded


def assert_counts(per_part, maps, order, sizes, locations, grid: int = 2):
    """A branch's ``per_part`` counts of localization.json are :func:`expected_counts` of ``maps``; returns its hits, pairs."""
    hits, pairs, excluded = expected_counts(maps, order, sizes, locations, grid=grid)
    assert {t: v["hits"] for t, v in per_part.items() if v["pairs"]} == hits
    assert {t: v["pairs"] for t, v in per_part.items() if v["pairs"]} == pairs
    assert {t: v["excluded"] for t, v in per_part.items() if v["excluded"]} == excluded
    return hits, pairs


def eval_pixels(run, data, image_root, tmp_path, capsys, image_size: int | None = 64) -> tuple[dict, str]:
    """``zslkit eval RUN --localization`` of a model that reads the JPEGs under ``image_root`` at ``image_size`` px
    (``None``: no ``--image-size``, the size the run recorded), parts in ``tmp_path / "CUB_200_2011"`` (criterion
    ``pixels``, 15 px): ``(localization.json, what it printed)``."""
    size = [] if image_size is None else ["--image-size", str(image_size)]
    argv = ["eval", str(run), "--dataset", "xlsa17", *data, "--dataset-root", str(image_root), *size,
            "--localization", "--cub-parts", str(tmp_path / "CUB_200_2011"), "--localization-criterion", "pixels",
            "--localization-threshold", "15", "--localization-out", str(tmp_path / "loc")]
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    return json.loads((tmp_path / "loc" / "localization.json").read_text()), printed


def write_cub_parts(folder, relative, sizes, rng):
    """images.txt in a shuffled id order (as CUB's is not xlsa17's), random parts, some invisible; boxes = whole image."""
    folder.mkdir(parents=True, exist_ok=True)  # the folder that holds images/, as in CUB_200_2011
    order = rng.permutation(len(relative))  # id k + 1 is image order[k]
    (folder / "images.txt").write_text("".join(f"{k + 1} {relative[i]}\n" for k, i in enumerate(order)))
    (folder / "parts").mkdir()
    (folder / "parts" / "parts.txt").write_text("".join(f"{p + 1} {name}\n" for p, name in enumerate(CUB_PARTS)))
    locations = np.zeros((len(relative), 15, 3))
    lines, boxes = [], []
    for k, i in enumerate(order):
        w, h = sizes[i]
        for p in range(15):
            visible = int(rng.random() < 0.7)
            x, y = (rng.uniform(0, w), rng.uniform(0, h)) if visible else (0.0, 0.0)
            locations[i, p] = x, y, visible
            lines.append(f"{k + 1} {p + 1} {x:.1f} {y:.1f} {visible}\n")
        boxes.append(f"{k + 1} 1.0 2.0 {w - 3}.0 {h - 4}.0\n")
    (folder / "parts" / "part_locs.txt").write_text("".join(lines))
    (folder / "bounding_boxes.txt").write_text("".join(boxes))
    return np.round(locations, 1)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_eval_localization_on_a_tiny_trained_checkpoint(tmp_path, capsys):
    rng = np.random.default_rng(0)
    tiny = make_tiny_xlsa17(tmp_path)
    sizes = []
    for i, r in enumerate(tiny.relative):  # images of three shapes: landscape, portrait, square
        width, height = [(48, 40), (45, 60), (50, 50)][i % 3]
        write_jpeg(tiny.image_root / "images" / r, seed=i, size=(height, width))
        sizes.append((width, height))
    (tmp_path / "names.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(NAMES)))
    np.save(tmp_path / "w2v.npy", rng.normal(size=(6, 5)).astype(np.float32))
    store = tmp_path / "store"
    assert main(["extract", "--dataset-root", str(tiny.image_root), "--xlsa17", str(tiny.folder), "--out", str(store),
                 "--backbone", "test_resnet", "--random-init", "--image-size", "64", "--batch-size", "8",
                 "--workers", "0", "--no-progress"]) == 0
    data = [f"--dataset-option=path={tiny.folder}", f"--dataset-option=features={store}",
            f"--dataset-option=attribute_names={tmp_path / 'names.txt'}", f"--dataset-option=attribute_vectors={tmp_path / 'w2v.npy'}"]
    run = tmp_path / "run"
    assert main(["train", "--dataset", "xlsa17", *data, "--epochs", "1", "--batch-size", "8", "--no-progress",
                 "--out", str(run)]) == 0, capsys.readouterr().err
    locations = write_cub_parts(tmp_path / "CUB_200_2011", tiny.relative, sizes, rng)
    capsys.readouterr()
    argv = ["eval", str(run), "--dataset", "xlsa17", *data, "--localization", "--cub-parts", str(tmp_path / "CUB_200_2011"),
            "--localization-criterion", "pixels", "--localization-threshold", "15", "--localization-out", str(tmp_path / "loc")]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "loc" / "localization.json").read_text())
    assert (tmp_path / "loc" / "localization.png").stat().st_size > 1000
    assert result["preprocessing"]["input_size"] == [3, 64, 64] and result["assumed"] == []

    # the same numbers from plain loops over the model's maps, with the cell centres written out by hand
    import zslkit.training

    model = zslkit.training.load_model(run)
    dataset = load_xlsa17(tiny.folder, features=store, attribute_names=tmp_path / "names.txt",
                          attribute_vectors=tmp_path / "w2v.npy")
    images = dataset.splits["test_unseen"]
    with torch.no_grad():
        output = model(torch.as_tensor(np.asarray(dataset.features[np.sort(images)], dtype=np.float32)))
    order = np.sort(images)
    for branch, maps in output.maps.items():
        if maps is None:
            continue
        hits, pairs = assert_counts(result["branches"][branch]["per_part"], maps, order, sizes, locations)
        assert result["branches"][branch]["overall"] == pytest.approx(sum(hits.values()) / sum(pairs.values()))
        assert branch in printed
    assert "| beak |" in printed and "overall" in printed

    # the seeded random-map baseline: one batch of the 8 test_unseen images, maps then scores drawn from seed 0
    assert main([*argv, "--localization-baseline"]) == 0
    with_baseline = json.loads((tmp_path / "loc" / "localization.json").read_text())["branches"]
    generator = torch.Generator().manual_seed(0)
    random_maps = torch.rand(tuple(output.maps["a2v"].shape), generator=generator)
    hits, pairs, excluded = expected_counts(random_maps, order, sizes, locations)
    assert {t: v["hits"] for t, v in with_baseline["random maps"]["per_part"].items() if v["pairs"]} == hits
    assert {k: v for k, v in with_baseline.items() if k != "random maps"} == result["branches"]

    # APN's selection: per image the top-scoring attribute of each group; the single-attribute groups of NAMES
    # make it every pair, so the counts stay the same
    assert main([*argv, "--localization-attributes", "top_per_group"]) == 0
    top = json.loads((tmp_path / "loc" / "localization.json").read_text())
    assert top["attributes"] == "top_per_group" and top["branches"] == result["branches"]

    # a store without image sizes and no --dataset-root: one line saying what to give
    meta_path = store / "store.json"
    meta = json.loads(meta_path.read_text())
    del meta["metadata"]["image_sizes"]
    meta_path.write_text(json.dumps(meta))
    assert main(argv) == 2
    assert "do not record the original image sizes; give --dataset-root" in capsys.readouterr().err
    assert main([*argv, "--dataset-root", str(tiny.image_root)]) == 0  # read from the image files instead
    assert json.loads((tmp_path / "loc" / "localization.json").read_text())["branches"] == result["branches"]

    # APN's protocol, the default criterion: its parts (bill, eye, crown under head; size left out), in crop pixels
    argv = ["eval", str(run), "--dataset", "xlsa17", *data, "--localization", "--cub-parts", str(tmp_path / "CUB_200_2011"),
            "--dataset-root", str(tiny.image_root), "--localization-out", str(tmp_path / "apn")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "apn mapping, upsampled peak, integer boxes, inclusive bound" in capsys.readouterr().out
    apn = json.loads((tmp_path / "apn" / "localization.json").read_text())
    assert (apn["criterion"], apn["mapping"], apn["peak"], apn["box"], apn["bound"]) == ("apn", "apn", "upsampled", "integer", "inclusive")
    for branch in apn["branches"].values():
        assert set(branch["per_part"]) == {"head", "wing", "tail"}
        judged = sum(v["pairs"] + v["excluded"] for v in branch["per_part"].values())
        assert judged == 5 * len(images)  # every attribute but size, in every image
