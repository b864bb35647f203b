"""The pretraining recorded by ``zslkit extract --pretraining`` reaches ``zslkit bench``'s leak-free columns."""

from __future__ import annotations

import json

import pytest
import torch

from tests.datasets.conftest import make_tiny_xlsa17
from zslkit.bench import run_benchmark
from zslkit.cli import main


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("leak_store")
    tiny = make_tiny_xlsa17(root)
    torch.manual_seed(0)
    store = root / "store"
    assert main(["extract", "--dataset-root", str(tiny.image_root), "--xlsa17", str(tiny.folder), "--out", str(store),
                 "--backbone", "test_resnet", "--random-init", "--image-size", "32", "--batch-size", "10",
                 "--workers", "0", "--no-progress", "--pretraining", "augreg_in21k_ft_in1k"]) == 0
    return tiny, store


def test_the_store_records_the_pretraining_and_the_bench_reads_it(extracted):
    tiny, store = extracted
    assert json.loads((store / "store.json").read_text())["metadata"]["pretraining"] == "augreg_in21k_ft_in1k"
    options = {"xlsa17": {"path": str(tiny.folder), "features": str(store)}}
    result = run_benchmark(["xlsa17"], ["eszsl"], dataset_options=options, progress=False)
    record = result.cells[0]["leakage"]
    assert record["pretraining"] == "augreg_in21k_ft_in1k" and record["label_sets"] == ["in1k", "in21k"]
    # the tiny dataset's unseen classes are "004.Delta" (ImageNet-21k's river delta, n09264803) and "005.Echo"
    assert record["unseen"] == 2 and record["overlapping"] == ["004.Delta"] and record["clean"] == [4]
    assert "U_leak_free" in result.table() and "xlsa17: augreg_in21k_ft_in1k (in1k + in21k, 1 of 2" in result.table()
    with pytest.raises(ValueError, match="--pretraining in12k contradicts xlsa17's backbone"):
        run_benchmark(["xlsa17"], ["eszsl"], dataset_options=options, progress=False, pretraining="in12k")


def test_extract_refuses_an_unknown_pretraining(extracted, tmp_path, capsys):
    tiny, _ = extracted
    assert main(["extract", "--dataset-root", str(tiny.image_root), "--xlsa17", str(tiny.folder), "--out",
                 str(tmp_path / "s"), "--backbone", "test_resnet", "--random-init", "--pretraining", "in5k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pretraining: pretraining 'in5k': not a known label set" in err[0]
    assert not (tmp_path / "s").exists()
