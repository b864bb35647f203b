"""Extras and constants of the branches under data parallelism (2 gloo processes) against one process:
the same gathered extras, losses, gradients and trained weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import torchrun
from zslkit.registry import unregister
from zslkit.training import train

_spec = importlib.util.spec_from_file_location("ddp_extras_worker", Path(__file__).with_name("ddp_extras_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


@pytest.fixture(scope="module")
def parts():
    worker.register_parts()
    yield
    unregister("attention", "ddp_extras_block")
    unregister("loss", "extras_loss")


@pytest.fixture(scope="module")
def ddp_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp_extras")
    torchrun(str(Path(worker.__file__)), str(out), cwd=out)
    return out


@pytest.mark.slow
def test_extras_are_gathered_and_give_single_process_losses_and_gradients(ddp_out, parts):
    data = worker.dataset()
    net = worker.build(data)
    _, x, labels = worker.step_batch(data)
    output = net(x)
    losses = net.loss(output, labels)
    losses["total"].backward()
    for rank in (0, 1):
        gathered = load_file(str(ddp_out / f"extras_{rank}.safetensors"))
        torch.testing.assert_close(gathered["attended"], output.extras["g"]["attended"].detach(), rtol=1e-5, atol=1e-6)
        assert gathered["peak"].dtype == torch.int64 and torch.equal(gathered["peak"], output.extras["g"]["peak"])
        theirs = json.loads((ddp_out / f"losses_{rank}.json").read_text())
        assert theirs == pytest.approx({k: float(v.detach()) for k, v in losses.items()}, rel=1e-5)
        grads = load_file(str(ddp_out / f"grads_{rank}.safetensors"))
        ours = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
        assert grads.keys() == ours.keys() and "branches.g.W1" in ours
        for name, grad in ours.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6 * float(grad.abs().max()), msg=name)


@pytest.mark.slow
def test_training_with_extras_under_ddp_equals_one_process(ddp_out, parts):
    single = train(worker.dataset(), "msdn", worker.CONFIG, split=worker.SPLIT, progress=False, **worker.OPTIONS)
    history = json.loads((ddp_out / "history_0.json").read_text())
    for ours, theirs in zip(single.history, history, strict=True):
        assert theirs["loss_extras_loss"] == pytest.approx(ours["loss_extras_loss"], rel=1e-5)
    trained = load_file(str(ddp_out / "trained_0.safetensors"))
    for key, value in single.model.state_dict().items():
        scale = float(value.abs().max()) or 1.0 if value.is_floating_point() else 1.0
        if value.is_floating_point():
            assert float((value - trained[key]).abs().max()) <= 1e-5 * scale, key
        else:
            assert torch.equal(value, trained[key]), key
