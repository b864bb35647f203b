"""``zslkit bench --dataset synthetic_images --backbone ...``: models trained end to end, as docs/data.md runs it."""

from __future__ import annotations

import json

import pytest

from zslkit.cli import main

TINY = ["--dataset-option", "num_classes=8", "--dataset-option", "images_per_class=4", "--dataset-option", "image_size=28"]
BACKBONE = ["--backbone", "resnet10t", "--random-init", "--backbone-option", "channels=[8,8,16,16]",
            "--backbone-option", "stem_width=8", "--backbone-option", "output_stride=8"]


def bench(tmp_path, *extra: str) -> list[str]:
    return ["bench", "--dataset", "synthetic_images", "--protocol", "paper", "--no-progress", "--out", str(tmp_path),
            *TINY, *extra]


def test_models_train_through_the_backbone_and_cells_record_it(tmp_path, capsys):
    assert main(bench(tmp_path, "--model", "pooled,apn", *BACKBONE)) == 0
    captured = capsys.readouterr()
    assert "| pooled |" in captured.out and "| apn |" in captured.out  # the table on stdout
    assert "apn/synthetic_images" in captured.err  # the recipe line (a log line): both rows train with APN's recipe
    cells = json.loads((tmp_path / "results.json").read_text())["cells"]
    assert [c["method"] for c in cells] == ["pooled", "apn"]
    backbone = {"model_name": "resnet10t", "random_init": True, "channels": [8, 8, 16, 16], "stem_width": 8, "output_stride": 8}
    for cell in cells:
        assert cell["settings"]["backbone"] == backbone
        assert cell["settings"]["recipe"]["backbone_lr"] > 0 and len(cell["train_history"]) == cell["settings"]["recipe"]["epochs"]
        assert all(0.0 <= cell["metrics"][k] <= 100.0 for k in ("T1", "U", "S", "H"))
    pooled, apn = (c["settings"]["options"] for c in cells)
    assert list(pooled["branches"]) == ["global"] and pooled["branches"]["global"]["pool"] == "mean"
    assert apn == {} and set(pooled["losses"]) == {"xe_global", "attri_global"}
    # the backbone's random initialisation is seeded by the cell's seed: a fresh run gives the same numbers
    again = tmp_path / "again"
    assert main(bench(again, "--model", "apn", "--no-cache", *BACKBONE)) == 0
    rerun = json.loads((again / "results.json").read_text())["cells"][0]
    assert rerun["metrics"] == cells[1]["metrics"] and [h["loss"] for h in rerun["train_history"]] == [h["loss"] for h in cells[1]["train_history"]]


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "ale", *BACKBONE], "method 'ale' fits pooled features, but dataset 'synthetic_images' holds images"),
    (["--model", "apn"], "dataset 'synthetic_images' holds images, which model 'apn' reads through a backbone"),
    (["--model", "apn", "--random-init"], "--backbone-option, --weights and --random-init need --backbone NAME"),
    (["--model", "apn", "--backbone", "resnet10t"], "--backbone needs exactly one of --weights PATH"),
    (["--model", "apn", *BACKBONE, "--backbone-option", "random_init=false"], "give it as --random-init"),
])
def test_images_without_a_backbone_and_bad_backbone_flags_are_refused(tmp_path, extra, message, capsys):
    assert main(bench(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_backbone_on_feature_maps_is_refused(tmp_path, capsys):
    argv = ["bench", "--model", "apn", "--no-progress", "--dataset-option", "num_classes=8",
            "--dataset-option", "images_per_class=4", *BACKBONE]
    assert main(argv) == 2
    assert "a backbone reads images, but dataset 'synthetic/validation' holds feature maps" in capsys.readouterr().err
