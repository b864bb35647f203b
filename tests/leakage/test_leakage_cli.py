"""Weight tag -> pretraining, and the ``zslkit leakage`` command (table on stdout, JSON, one-line errors)."""

from __future__ import annotations

import json

import pytest

from zslkit.cli import main
from zslkit.leakage import pretraining_of


@pytest.mark.parametrize(("name", "label_sets"), [
    ("in1k", ("in1k",)), ("in21k", ("in21k",)),
    ("augreg_in21k_ft_in1k", ("in1k", "in21k")),
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", ("in1k", "in21k")),
    ("vit_base_patch16_224", ("in1k", "in21k")),  # timm's default weights of ViT-B/16
    ("resnet101.tv_in1k", ("in1k",)),
    ("sw_in12k_ft_in1k", ("in1k", "in12k")),
    ("convnext_base.fb_in22k_ft_in1k", ("in1k", "in22k")),
    ("miil_in21k_ft_in1k", ("in1k", "in21k-miil")),
    ("eva02_base_patch14_224.mim_in22k", ("in22k",)),
    ("mae", ("in1k",)),
    ("none", ()),
])
def test_pretraining_of_imagenet_tags(name, label_sets):
    found = pretraining_of(name)
    assert found.label_sets == label_sets and not found.web_scale


@pytest.mark.parametrize("name", ["vit_base_patch16_clip_224.openai", "clip_laion2b_augreg_ft_in12k_in1k",
                                  "vit_small_patch14_dinov2.lvd142m", "resnext101_32x8d.fb_wsl_ig1b_ft_in1k", "webli"])
def test_web_scale_tags_are_unknown_even_after_imagenet_finetuning(name):
    found = pretraining_of(name)
    assert found.web_scale and found.label_sets == () and "leakage unknown" in found.describe()


@pytest.mark.parametrize("name", ["foo", "vit_tiny_patch16_224.pt", "in5k"])
def test_unknown_tags_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match=rf"pretraining '{name}': not a known label set or timm weight tag") as info:
        pretraining_of(name)
    assert "\n" not in str(info.value)


def test_cli_prints_every_match_and_writes_json(tmp_path, capsys):
    path = tmp_path / "leak.json"
    assert main(["leakage", "--dataset", "awa2,cub", "--pretraining", "augreg_in21k_ft_in1k", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "**awa2 unseen classes (10, xlsa17) vs augreg_in21k_ft_in1k" in out and "10 overlap, 0 clean**" in out
    assert "| 087.Mallard | in21k | n01847806 | mallard | exact |" in out
    assert "| bat | in21k | n02806379 | bat | exact; excluded: a club for hitting a ball |" in out
    report = json.loads(path.read_text())
    assert report["label_sets"] == ["in1k", "in21k"] and not report["web_scale"]
    cub = report["datasets"]["cub"]
    assert len(cub["overlapping"]) == 21 and len(cub["clean"]) == 29 and "077.Tropical_Kingbird" in cub["clean"]
    mallard = next(m for m in cub["matches"] if m["class"] == "087.Mallard")  # xlsa17 label 61 (its images in the npz)
    assert mallard["index"] == 61 and mallard["matches"][0]["synset"] == "n01847806"


def test_cli_web_scale_says_unknown(capsys):
    assert main(["leakage", "--dataset", "sun", "--pretraining", "clip_laion2b"]) == 0
    assert "web-scale pretraining, leakage unknown**: no class can be called clean." in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--dataset", "apy", "--pretraining", "in1k"], "--dataset 'apy': give cub, sun or awa2"),
    (["--dataset", "cub", "--pretraining", "in5k"], "--pretraining: pretraining 'in5k': not a known label set"),
])
def test_cli_errors(capsys, argv, message):
    assert main(["leakage", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_bench_refuses_an_unknown_pretraining_before_any_work(capsys):
    assert main(["bench", "--dataset", "synthetic", "--pretraining", "in5k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "zslkit bench: error: --pretraining: pretraining 'in5k'" in err[0]
