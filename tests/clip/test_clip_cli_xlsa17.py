"""The docs' commands for real data, on a tiny dataset in xlsa17's layout: extract --clip, then the CLIP rows."""

from __future__ import annotations

import json

import pytest

from tests.datasets.conftest import make_tiny_xlsa17
from zslkit.cli import main
from zslkit.clip import TINY_CLIP_CONFIG

open_clip = pytest.importorskip("open_clip")
TINY_CLIP = ["--clip", "zslkit-tiny"]


def test_extract_clip_then_bench_the_clip_rows(tmp_path, capsys):
    tiny = make_tiny_xlsa17(tmp_path)
    store = tmp_path / "features" / "tiny-clip"
    assert main(["extract", "--dataset-root", str(tiny.image_root), "--xlsa17", str(tiny.folder), "--out", str(store),
                 *TINY_CLIP, "--random-init", "--image-size", "32", "--workers", "0", "--no-progress"]) == 0
    assert "20 x 32 x 1 x 1" in capsys.readouterr().out
    names = tmp_path / "attributes.txt"
    names.write_text("".join(f"{i + 1} has_wing_color::{c}\n" for i, c in enumerate(["red", "blue", "black", "white", "brown", "grey"])))
    data = ["--dataset", "xlsa17", f"--dataset-option=path={tiny.folder}", f"--dataset-option=features={store}",
            "--dataset-option=global_features=false", f"--dataset-option=attribute_names={names}"]
    out = tmp_path / "runs"
    assert main(["bench", *data, "--model", "clip_names,clip_attributes,clip_linear", *TINY_CLIP, "--clip-random-init",
                 "--no-progress", "--out", str(out)]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "| clip_names † |" in captured.out and "| clip_attributes † |" in captured.out
    assert "plumbing check" in captured.err
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert [c["method"] for c in cells] == ["clip_names", "clip_attributes", "clip_linear"]
    # a store from another CLIP model is refused, naming both
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zslkit-test-other.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(tmp_path / "configs")
    assert main(["bench", *data, "--model", "clip_names", "--clip", "zslkit-test-other", "--clip-random-init",
                 "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "come from ('zslkit-tiny', 0), not from the run's CLIP model ('zslkit-test-other', 0)" in error
