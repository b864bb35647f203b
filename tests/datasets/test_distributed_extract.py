"""``torchrun --nproc-per-node 2 ... zslkit extract`` (CPU, gloo): each process writes a slice of the store.

The stores equal a single-process extraction, from scratch and when resuming a
partial store; the completeness check itself (every slice on disk before
``COMPLETE``) is tested in ``test_store.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from tests.conftest import torchrun
from zslkit.cli import main
from zslkit.datasets import open_store

DDP_CLI = Path(__file__).resolve().parents[1] / "ddp_cli.py"


@pytest.mark.slow
def test_ddp_extraction_equals_single_process_and_resumes_a_partial_store(tiny_xlsa17, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), weights)

    def argv(out: Path) -> list[str]:
        return ["extract", "--dataset-root", str(tiny_xlsa17.image_root), "--xlsa17", str(tiny_xlsa17.folder),
                "--out", str(out), "--backbone", "test_resnet", "--weights", str(weights), "--image-size", "32",
                "--batch-size", "4", "--dtype", "float32", "--workers", "0", "--no-progress"]

    assert main(argv(tmp_path / "single")) == 0
    reference = open_store(tmp_path / "single")
    # an interrupted single-process extraction: rows 0-5 on disk, the rest never written
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "single", partial)
    (partial / "COMPLETE").unlink()
    (partial / "progress.json").write_text(json.dumps({"done": 6, "total": len(reference)}))
    rows = np.load(partial / "features.npy", mmap_mode="r+")
    rows[6:] = 0
    rows.flush()
    del rows

    result = torchrun(str(DDP_CLI), json.dumps(argv(tmp_path / "ddp")), json.dumps(argv(partial)), cwd=tmp_path)
    assert result.stdout.count("wrote ") == 2  # rank 0 reports, once per command
    for path in (tmp_path / "ddp", partial):
        store = open_store(path)
        assert store.metadata == reference.metadata
        np.testing.assert_allclose(store[:], reference[:], rtol=1e-5, atol=1e-6)
        assert not list(path.glob("progress-*-*.json"))
