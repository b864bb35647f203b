"""The whole-training benchmark builds CUB's split sizes and accounts for its time; nothing here is timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import train_bench  # noqa: E402


def test_the_dataset_has_cubs_split_sizes(shared_data):
    real = np.load(shared_data("cub/xlsa17_splits.npz"), allow_pickle=False)
    data = train_bench.cub_sized_dataset(np.zeros((11788, 1, 1, 1), dtype=np.float16), 11788)
    for split in ("trainval", "test_seen", "test_unseen"):
        assert len(data.splits[split]) == len(real[f"{split}_loc"]), split
    assert (len(data.seen_classes), len(data.unseen_classes)) == (len(real["seenclasses"]), len(real["unseenclasses"]))
    assert data.class_attributes.shape == (200, 312) and data.attribute_embeddings.shape == (312, 300)


def test_a_small_run_records_every_epoch_and_splits_its_time(tmp_path, capsys):
    out = tmp_path / "record.json"
    argv = ["--device", "cpu", "--epochs", "2", "--images", "260", "--channels", "8", "--grid", "3",
            "--dir", str(tmp_path), "--out", str(out), "--threads", "1"]
    assert train_bench.main(argv) == 0
    record = json.loads(out.read_text())
    (run,) = record["records"]
    assert record["images"] == 260 and run["variant"] == "fp32"
    assert run["total_s"] == pytest.approx(run["train_s"] + run["eval_s"])
    assert len(run["epoch_train_s"]) == len(run["epoch_eval_s"]) == 2
    assert run["eval_s"] == pytest.approx(sum(run["epoch_eval_s"]))
    assert sum(run["epoch_train_s"]) <= run["train_s"]  # the loop's epochs, inside the timed training call
    steps = 2 * -(-round(7057 * 260 / 11788) // 50)
    assert run["ms_per_step"] == pytest.approx(1000 * run["train_s"] / steps)
    assert record["resident"].startswith("ResidentFeatures(260 of 260 images, 8x3x3, torch.float16")
    assert record["load_s"] > 0
    assert 0.0 <= run["last_epoch"]["test_H"] <= 1.0
    assert not (tmp_path / "zslkit-cub-sized-store").exists()  # the generated store is removed
    assert "| fp32 |" in capsys.readouterr().out
