"""DDP against one process, shared by the model tests: a worker module (run under torchrun, 2 gloo processes)
defines ``trained(name) -> nn.Module``; rank 0 saves each model's weights, and the test trains the same
models in its own process and compares them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from zslkit import distributed


def save_trained(trained: Callable[[str], torch.nn.Module], names: Sequence[str], out: Path) -> None:
    """In one process group, train each model of ``names`` and save its weights to ``out/<name>.safetensors`` (rank 0)."""
    with distributed.process_group("cpu"):
        for name in names:
            model = trained(name)
            if distributed.is_main():
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"{name}.safetensors"))


def assert_ddp_equals_single_process(worker_file: Path, names: Sequence[str], tmp_path: Path) -> None:
    """Run ``worker_file`` under torchrun, then assert every weight within 1e-5 of its largest value of the same run here."""
    from tests.conftest import torchrun

    spec = importlib.util.spec_from_file_location(worker_file.stem, worker_file)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    torchrun(str(worker_file), str(tmp_path), cwd=tmp_path)
    for name in names:
        ours, theirs = worker.trained(name).state_dict(), load_file(str(tmp_path / f"{name}.safetensors"))
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            scale = float(value.abs().max()) or 1.0 if value.is_floating_point() else 1.0
            assert float((value.double() - theirs[key].double()).abs().max()) <= 1e-5 * scale, (name, key)
