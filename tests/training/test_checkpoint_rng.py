"""Exact resume: the optimizer state and the torch RNG states (CPU and CUDA) round-trip through a checkpoint."""

import pytest
import torch

import zslkit
from tests.training.test_trainer import state_equal
from tests.training.test_transzero_training import OPTIONS, TINY
from zslkit.training import TrainConfig, train
from zslkit.training.checkpoint import (
    Checkpoint,
    load_checkpoint,
    restore_rng_states,
    restore_training_state,
    save_checkpoint,
)


def stepped_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        optimizer.step()
    return model, optimizer


def test_optimizer_and_cpu_rng_state_round_trip(tmp_path):
    model, optimizer = stepped_model()
    path = save_checkpoint(tmp_path, 1, model, optimizer)
    expected_draw = torch.rand(6)  # what the generator gives right after the save
    torch.rand(100)  # move it on, as the rest of an interrupted run would
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    restore_training_state(load_checkpoint(path), fresh)
    assert torch.equal(torch.rand(6), expected_draw)
    saved, restored = optimizer.state_dict(), fresh.state_dict()
    assert [g["lr"] for g in restored["param_groups"]] == [1e-2]  # the saved rate, not the fresh optimizer's 0.5
    for index, values in saved["state"].items():
        assert restored["state"][index].keys() == values.keys()
        assert all(torch.equal(torch.as_tensor(restored["state"][index][k]), torch.as_tensor(v)) for k, v in values.items())


def test_an_optimizer_grouped_otherwise_is_refused_in_one_line(tmp_path):
    model, optimizer = stepped_model()
    path = save_checkpoint(tmp_path, 1, model, optimizer)
    head, backbone = list(model[0].parameters()), list(model[2].parameters())
    regrouped = torch.optim.Adam([{"params": head}, {"params": backbone, "lr": 1e-3}], lr=1e-2)
    with pytest.raises(ValueError, match="the checkpoint's optimizer has 1 parameter groups, this run's has 2"):
        restore_training_state(load_checkpoint(path), regrouped)


def test_cuda_states_are_restored_where_cuda_is_available():
    """A checkpoint with ``rng.cuda.0``: set into device 0 with CUDA, left aside without (a GPU run resumed on a CPU)."""
    torch.manual_seed(3)
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(0) if torch.cuda.is_available() else torch.zeros(16, dtype=torch.uint8)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(7)
        cuda = torch.cuda.get_rng_state(0)
        torch.cuda.manual_seed_all(8)
    checkpoint = Checkpoint(path=None, meta={}, tensors={"rng.torch": cpu, "rng.cuda.0": cuda})
    torch.manual_seed(4)
    restored = restore_rng_states(checkpoint)
    assert torch.equal(torch.get_rng_state(), cpu)
    if torch.cuda.is_available():
        assert restored[:2] == ["rng.torch", "rng.cuda.0"] and torch.equal(torch.cuda.get_rng_state(0), cuda)
    else:
        assert restored == ["rng.torch"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: dropout masks drawn by the CUDA generator")
def test_resume_on_a_gpu_continues_bitwise(tmp_path):
    """TransZero's dropout draws its masks from the CUDA generator: 1 + 1 epochs equal 2 straight epochs only when
    the resume restores the CUDA RNG state."""
    dataset = zslkit.load_dataset("synthetic", **TINY)

    def config(epochs):
        return TrainConfig(model="transzero", epochs=epochs, batch_size=16, optimizer="adam", lr=1e-3, device="cuda",
                           model_options=OPTIONS["transzero"])

    straight = train(dataset, "transzero", config(2), progress=False)
    train(dataset, "transzero", config(1), out_dir=tmp_path, progress=False)
    torch.cuda.manual_seed_all(12345)  # another process would start from another CUDA state
    resumed = train(dataset, "transzero", config(2), out_dir=tmp_path, resume=True, progress=False)
    assert state_equal(straight.model, resumed.model)
