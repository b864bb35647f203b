"""Checkpoints: atomic writes (no half-written file under the final name), checksums, no unpickling of code."""

from __future__ import annotations

import builtins
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import zslkit
import zslkit.training.checkpoint as checkpoint_module
from zslkit.backbones.timm_backbone import BackboneWeightsError, TimmBackbone
from zslkit.cli import main
from zslkit.datasets import DatasetError, load_attribute_vectors
from zslkit.interop import load_official_msdn
from zslkit.training import (
    CheckpointError,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    train,
)
from zslkit.training.checkpoint import save_checkpoint

TINY = dict(num_classes=8, family_size=4, images_per_class=6, channels=8, grid=3, embedding_dim=6)
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=1e-3, num_threads=1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(dataset, "msdn", CONFIG, out_dir=out, progress=False)


# ---------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("crash_in", ["tensors", "json"])
def test_a_crash_mid_write_leaves_no_partial_checkpoint_under_the_final_name(trained, tmp_path, monkeypatch, crash_in):
    out = tmp_path / "run"
    save_checkpoint(out, 1, trained.model)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_save, real_write_text = checkpoint_module.save_file, Path.write_text

    def half_then_crash(write, tmp):
        write(tmp)
        data = Path(tmp).read_bytes()
        Path(tmp).write_bytes(data[: len(data) // 2])  # half the bytes reached the disk...
        raise OSError("disk full")  # ...then the writer died

    if crash_in == "tensors":
        monkeypatch.setattr(checkpoint_module, "save_file", lambda tensors, tmp: half_then_crash(lambda t: real_save(tensors, t), tmp))
    else:
        monkeypatch.setattr(Path, "write_text", lambda self, text: half_then_crash(lambda t: real_write_text(t, text), self))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(out, 2, trained.model)
    monkeypatch.undo()
    names = sorted(p.name for p in out.iterdir())
    expected = ["epoch_001.json", "epoch_001.safetensors"] + (["epoch_002.safetensors"] if crash_in == "json" else [])
    assert names == expected  # no temporary file left, no epoch_002.json
    assert latest_checkpoint(out) == out / "epoch_001.json"  # an epoch is complete only with its JSON
    assert {n: (out / n).read_bytes() for n in before} == before
    assert load_checkpoint(out).epoch == 1


def test_a_swapped_or_damaged_tensor_file_is_refused_by_checksum(trained, tmp_path):
    out = tmp_path / "run"
    save_checkpoint(out, 1, trained.model)
    save_checkpoint(out, 2, torch.nn.Linear(2, 2))  # a different checkpoint's tensors
    (out / "epoch_001.safetensors").write_bytes((out / "epoch_002.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"epoch_001.safetensors: SHA-256 differs from the one epoch_001.json records"):
        load_checkpoint(out / "epoch_001.json")


def test_a_new_run_refuses_a_directory_with_checkpoints_and_resume_refuses_another_recipe(dataset, trained):
    with pytest.raises(FileExistsError, match=r"holds checkpoints of an earlier run \(epoch_002.json\); resume it"):
        train(dataset, "msdn", CONFIG, out_dir=trained.out_dir, progress=False)
    other = TrainConfig(**{**CONFIG.to_dict(), "epochs": 3, "lr": 5e-4})
    with pytest.raises(ValueError, match=r"cannot resume, config lr is 0.001 in the checkpoint and 0.0005 now"):
        train(dataset, "msdn", other, out_dir=trained.out_dir, resume=True, progress=False)
    view = dataset.validation_view()
    with pytest.raises(ValueError, match=r"cannot resume, the checkpoint was trained on dataset 'synthetic', not 'synthetic/validation'"):
        train(view, "msdn", CONFIG, out_dir=trained.out_dir, resume=True, progress=False)


# ---------------------------------------------------------------- no code execution
class RunsCode:
    """Unpickling this calls ``open(marker, "w")``: the file appears if a loader runs pickled code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def hostile_files(folder: Path) -> dict[str, Path]:
    """The same payload in every container a zslkit loader might be handed."""
    marker = folder / "PWNED"
    state = {"V": torch.zeros(2, 2), "att": RunsCode(marker)}
    files = {"torch zip": folder / "zip.pth", "torch legacy": folder / "legacy.pth", "raw pickle": folder / "raw.pkl",
             "npy object array": folder / "objects.npy"}
    torch.save(state, files["torch zip"])
    torch.save(state, files["torch legacy"], _use_new_zipfile_serialization=False)
    files["raw pickle"].write_bytes(pickle.dumps(RunsCode(marker)))
    np.save(files["npy object array"], np.array([RunsCode(marker)], dtype=object), allow_pickle=True)
    return files


@pytest.mark.parametrize("container", ["torch zip", "torch legacy", "raw pickle", "npy object array"])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_hostile_pickles_are_refused_by_every_loader_without_running(tmp_path, container):
    path = hostile_files(tmp_path)[container]
    marker = tmp_path / "PWNED"
    loaders = {
        "official MSDN import": (load_official_msdn, CheckpointError),
        "timm backbone weights": (lambda p: TimmBackbone("test_resnet", weights=p), BackboneWeightsError),
        "attribute vectors": (lambda p: load_attribute_vectors(p.with_suffix(".pkl") if container != "npy object array" else p), DatasetError),
    }
    if container != "npy object array":
        path.with_suffix(".pkl").write_bytes(path.read_bytes())
    for what, (load, error) in loaders.items():
        with pytest.raises(error) as info:
            load(path)
        assert str(path.parent) in str(info.value), what
        assert "\n" not in str(info.value), what
        assert not marker.exists(), f"{what} ran pickled code from a {container} file"


def test_a_pickle_in_place_of_a_zslkit_checkpoint_is_refused(trained, tmp_path):
    out = tmp_path / "run"
    save_checkpoint(out, 1, trained.model)
    torch.save({"model": RunsCode(tmp_path / "PWNED")}, out / "epoch_001.safetensors")
    with pytest.raises(CheckpointError, match="epoch_001.safetensors: SHA-256 differs"):
        load_model(out)
    meta = json.loads((out / "epoch_001.json").read_text())
    del meta["tensors_sha256"]  # as in a checkpoint written before checksums were recorded
    (out / "epoch_001.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"epoch_001.safetensors: cannot read safetensors file"):
        load_model(out)
    assert not (tmp_path / "PWNED").exists()


def test_the_cli_refuses_a_hostile_official_checkpoint_in_one_line(tmp_path, capsys):
    path = hostile_files(tmp_path)["torch zip"]
    assert main(["eval", str(path), "--official", "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a plain state dict of tensors (loaded with weights_only=True" in err[0]
    assert not (tmp_path / "PWNED").exists()


def test_no_loader_in_the_package_can_unpickle_code():
    """Static guard: every torch.load passes weights_only=True; no pickle.load(s), np.load allow_pickle=True or yaml.load."""
    problems = []
    for source in sorted((REPO / "zslkit").rglob("*.py")):
        text = source.read_text()
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                problems.append(f"{source}: {match.group(0)}")
        for pattern in (r"pickle\.loads?\(", r"allow_pickle=True", r"yaml\.load\(", r"yaml\.unsafe_load", r"\bdill\b"):
            problems += [f"{source}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not problems, problems
