"""The fast training path: resident features and torch.compile change nothing but speed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from zslkit.datasets import ResidentFeatures, create_store, make_synthetic
from zslkit.training import TrainConfig, load_config, train


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small synthetic dataset whose features live in a float16 feature store."""
    data = make_synthetic(num_classes=16, images_per_class=8, seed=2)
    writer = create_store(tmp_path_factory.mktemp("fast") / "store", data.features.shape)
    writer.write(0, np.asarray(data.features))
    return dataclasses.replace(data, features=writer.finish())


def config(**changes) -> TrainConfig:
    base = load_config("msdn/synthetic").to_dict()
    return TrainConfig.from_dict({**base, "epochs": 2, "num_threads": 1, **changes})


def parameters(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resident_training_equals_reading_the_store_every_step(stored):
    streamed = train(stored, "msdn", config(resident="off"), progress=False)
    held = train(stored, "msdn", config(resident="on"), progress=False)
    assert streamed.resident is None
    assert isinstance(held.resident, ResidentFeatures) and held.resident.rows.dtype == torch.float16
    assert set(held.resident.images.tolist()) == set(stored.splits["trainval"].tolist())
    assert held.resident.nbytes == len(stored.splits["trainval"]) * int(np.prod(stored.features.shape[1:])) * 2
    for a, b in zip(streamed.history, held.history):
        assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}
    for name, value in parameters(streamed.model).items():
        assert torch.equal(value, parameters(held.model)[name]), name


def test_an_epoch_on_resident_features_uploads_its_positions_once(stored, monkeypatch):
    calls = []
    real = ResidentFeatures.positions

    def counted(self, indices):
        calls.append(len(indices))
        return real(self, indices)

    monkeypatch.setattr(ResidentFeatures, "positions", counted)
    cfg = config(resident="on", epochs=2, batch_size=10)
    train(stored, "msdn", cfg, progress=False)
    steps = -(-len(stored.splits["trainval"]) // 10)
    assert steps > 2 and calls == [len(stored.splits["trainval"])] * 2  # one lookup and copy per epoch, not per step


def test_float16_residency_of_float32_features_trains_like_features_rounded_to_float16():
    data = make_synthetic(num_classes=16, images_per_class=8, seed=2)
    assert np.asarray(data.features).dtype == np.float32
    rounded = dataclasses.replace(data, features=np.asarray(data.features).astype(np.float16).astype(np.float32))
    expected = train(rounded, "msdn", config(resident="off"), progress=False)
    held = train(data, "msdn", config(resident="on", resident_dtype="float16"), progress=False)
    assert held.resident.rows.dtype == torch.float16
    for name, value in parameters(expected.model).items():
        assert torch.equal(value, parameters(held.model)[name]), name
    own = train(data, "msdn", config(resident="on"), progress=False)  # default: the source's dtype
    assert own.resident.rows.dtype == torch.float32


def test_auto_keeps_reading_from_the_source_on_cpu(stored):
    assert train(stored, "msdn", config(resident="auto", epochs=1), progress=False).resident is None


def test_resident_on_refuses_a_torch_dataset_of_images(stored):
    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(stored.labels)

        def __getitem__(self, i):
            return torch.zeros(3, 7, 7)

    backbone = torch.nn.Conv2d(3, stored.feature_dim, 1)
    with pytest.raises(ValueError, match="resident='on' holds .* these inputs are a torch Dataset"):
        train(stored, "msdn", config(resident="on"), backbone=backbone, inputs=Images(), progress=False)


def test_a_run_may_resume_with_resident_features_and_ends_bitwise_equal(stored, tmp_path):
    whole = train(stored, "msdn", config(resident="off"), progress=False)
    train(stored, "msdn", config(resident="off", epochs=1), out_dir=tmp_path / "run", progress=False)
    resumed = train(stored, "msdn", config(resident="on"), out_dir=tmp_path / "run", resume=True, progress=False)
    assert resumed.resident is not None
    for name, value in parameters(whole.model).items():
        assert torch.equal(value, parameters(resumed.model)[name]), name


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])  # the second replays CUDA graphs on a GPU
def test_compiled_forward_and_loss_train_like_eager(mode):
    # the data the tolerances below were set on (compiled and eager round differently; training amplifies it)
    data = make_synthetic(num_classes=12, images_per_class=6, seed=5, variant="parts")
    from torch._dynamo.utils import counters

    eager = train(data, "msdn", config(epochs=2), progress=False)
    torch._dynamo.reset()
    counters.clear()
    compiled = train(data, "msdn", config(epochs=2, compile=mode), progress=False)
    assert counters["stats"]["unique_graphs"] >= 2  # the forward and the loss were really compiled
    for a, b in zip(eager.history, compiled.history):
        for key in (k for k in a if k.startswith("loss")):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    for name, value in parameters(eager.model).items():
        torch.testing.assert_close(parameters(compiled.model)[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_unknown_residency_and_compile_modes_are_refused():
    with pytest.raises(ValueError, match=r"resident must be one of \('auto', 'on', 'off'\), got 'yes'"):
        TrainConfig(resident="yes")
    with pytest.raises(ValueError, match="compile must be one of .* got 'fast'"):
        TrainConfig(compile="fast")


@pytest.mark.parametrize("name", ["rmsprop", "adam", "sgd"])
def test_the_multi_tensor_optimizers_step_exactly_like_the_per_parameter_loop(name):
    """zslkit leaves the implementation to PyTorch's choice per device (multi-tensor on a GPU, the loop on the CPU):
    both must give the same bits, checked here with the multi-tensor one forced."""
    from zslkit.training import build_optimizer

    torch.manual_seed(0)
    ours = [torch.randn(40, 30, requires_grad=True), torch.randn(7, requires_grad=True)]
    loop = [p.detach().clone().requires_grad_() for p in ours]
    cfg = config(optimizer=name)
    fast = build_optimizer(cfg, ours)
    assert all(group["foreach"] is None for group in fast.param_groups)  # PyTorch's choice per device
    for group in fast.param_groups:
        group["foreach"] = True
    settings = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "foreach": False}
    slow = {"rmsprop": lambda: torch.optim.RMSprop(loop, momentum=cfg.momentum, **settings),
            "adam": lambda: torch.optim.Adam(loop, **settings),
            "sgd": lambda: torch.optim.SGD(loop, momentum=cfg.momentum, **settings)}[name]()
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        for a, b in zip(ours, loop):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        fast.step()
        slow.step()
    for a, b in zip(ours, loop):
        assert torch.equal(a, b)


def test_tf32_is_on_while_training_only_and_changes_nothing_on_a_cpu():
    data = make_synthetic(num_classes=12, images_per_class=6, seed=5)
    seen = []
    before = torch.backends.cuda.matmul.allow_tf32
    fp32 = train(data, "msdn", config(epochs=1), progress=False,
                 on_epoch=lambda e, m: seen.append(torch.backends.cuda.matmul.allow_tf32))
    tf32 = train(data, "msdn", config(epochs=1, precision="tf32"), progress=False,
                 on_epoch=lambda e, m: seen.append(torch.backends.cuda.matmul.allow_tf32))
    assert seen == [False, True] and torch.backends.cuda.matmul.allow_tf32 == before
    for name, value in parameters(fp32.model).items():
        assert torch.equal(value, parameters(tf32.model)[name]), name  # CPU matrix products ignore the flag
