"""Region features of a ViT extracted before zslkit applied the final norm are told apart when read."""

import logging

import numpy as np

from zslkit.cli import main
from zslkit.datasets.store import create_store, open_store

OLD_VIT = {"name": "timm", "model": "vit_tiny_patch16_224", "weights": None}


def store(path, backbone):
    writer = create_store(path, (2, 4, 2, 2), dtype="float32", metadata={"backbone": backbone})
    writer.write(0, np.zeros((2, 4, 2, 2), dtype=np.float32))
    return writer.finish()


def test_old_vit_features_are_named_when_read(tmp_path, caplog, capsys):
    store(tmp_path / "old", OLD_VIT)
    with caplog.at_level(logging.WARNING, logger="zslkit.datasets.store"):
        opened = open_store(tmp_path / "old")
    assert "before zslkit applied the model's final norm" in opened.recipe_note
    assert any("re-extract" in r.getMessage() and str(tmp_path / "old") in r.getMessage() for r in caplog.records)
    assert main(["data", "info", str(tmp_path / "old")]) == 0
    assert "note: region features of ViT 'vit_tiny_patch16_224' extracted before" in capsys.readouterr().out


def test_new_vit_features_and_cnn_features_say_nothing(tmp_path, caplog):
    store(tmp_path / "new", {**OLD_VIT, "features": "final_norm"})
    store(tmp_path / "cnn", {"name": "timm", "model": "resnet18", "weights": None})
    with caplog.at_level(logging.WARNING, logger="zslkit.datasets.store"):
        assert open_store(tmp_path / "new").recipe_note is None
        assert open_store(tmp_path / "cnn").recipe_note is None
    assert not caplog.records
