"""``zslkit train --resume`` after a SIGKILL at any point ends bitwise equal to an uninterrupted run.

A child process (the ``cli`` fixture: forked from a server that imported zslkit once) runs
``zslkit train`` and kills itself (SIGKILL: no cleanup, no
``finally``) at one chosen point: in the middle of an epoch, half-way through writing
a checkpoint's tensors, between a checkpoint's tensors and its JSON, or while the
logs are written. ``zslkit train --resume`` then finishes the run, and its final
parameters, optimizer state, per-epoch losses and test metrics must equal
(``torch.equal``, CPU) those of a run that was never interrupted.
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zslkit.cli import main

# 8 classes x 8 images, 8 channels on a 3x3 grid: 36 training images, 3 steps of 16 per epoch
ARGS = ["train", "--epochs", "3", "--batch-size", "16", "--no-progress",
        *[arg for option in ("num_classes=8", "images_per_class=8", "channels=8", "grid=3", "embedding_dim=6")
          for arg in ("--dataset-option", option)]]

# Run in the child before ``zslkit train``: patch one zslkit function to SIGKILL the process
# at the chosen point (POINT, WHEN are filled in).
KILL = textwrap.dedent("""
    import os, signal
    from pathlib import Path
    import zslkit.training.checkpoint as checkpoint
    import zslkit.training.trainer as trainer

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def counted(real, before=die):
        calls = {"n": 0}
        def hook(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == WHEN:
                before(*args, **kwargs)
            return real(*args, **kwargs)
        return hook

    def half_written(tensors, tmp):  # the tensor file is half on disk when the process dies
        real_save(tensors, tmp)
        Path(tmp).write_bytes(Path(tmp).read_bytes()[: Path(tmp).stat().st_size // 2])
        die()

    real_save = checkpoint.save_file
    if POINT == "step":  # between the backward pass and the optimizer step of step WHEN
        trainer.check_finite_step = counted(trainer.check_finite_step)
    elif POINT == "tensors":  # inside the tensor write of epoch WHEN
        checkpoint.save_file = counted(real_save, half_written)
    elif POINT == "json":  # tensors of epoch WHEN in place, its JSON not yet
        checkpoint._sha256 = counted(checkpoint._sha256)
    elif POINT == "logs":  # checkpoint of epoch WHEN complete, history.csv/json not yet updated
        trainer._write_logs = counted(trainer._write_logs)
""")


def run_killed(cli, out: Path, kill_at: str) -> None:
    point, when = kill_at.split(":")
    result = cli([*ARGS, "--out", out], setup=f"POINT, WHEN = {point!r}, {int(when)}\n" + KILL)
    assert result.signal == signal.SIGKILL, f"the run was not killed at {kill_at}: {result}"


def final_state(out: Path) -> tuple[dict[str, torch.Tensor], list[dict], dict]:
    """Tensors of the last checkpoint (model, optimizer, RNG), per-epoch losses and the test metrics."""
    tensors = load_file(str(out / "epoch_003.safetensors"))
    history = [{k: v for k, v in row.items() if k.startswith(("epoch", "loss", "lr"))}
               for row in json.loads((out / "history.json").read_text())]
    metrics = {k: v for k, v in json.loads((out / "results.json").read_text())[0].items() if k != "wall_s"}
    return tensors, history, metrics


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cli):  # the CLI server starts first and imports while this trains
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    return final_state(out)


@pytest.mark.parametrize("kill_at", ["step:1", "step:5", "step:9", "tensors:2", "json:2", "json:3", "logs:1"])
def test_resume_after_sigkill_matches_the_uninterrupted_run_bitwise(uninterrupted, cli, tmp_path, kill_at, capsys):
    out = tmp_path / "run"
    run_killed(cli, out, kill_at)
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    tensors, history, metrics = final_state(out)
    expected_tensors, expected_history, expected_metrics = uninterrupted
    assert tensors.keys() == expected_tensors.keys()
    different = [k for k in tensors if not torch.equal(tensors[k], expected_tensors[k])]
    assert not different, f"differ after resuming from a kill at {kill_at}: {different}"
    assert history == expected_history and metrics == expected_metrics
    assert not list(out.glob(".*.tmp"))  # the killed run's temporary files were cleared


def test_a_second_kill_after_resuming_still_converges(uninterrupted, cli, tmp_path, capsys):
    out = tmp_path / "run"
    run_killed(cli, out, "step:2")  # epoch 1 never finished: nothing to resume from
    run_killed(cli, out, "tensors:2")  # starts afresh, then dies writing epoch 2
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    tensors, history, metrics = final_state(out)
    assert all(torch.equal(tensors[k], uninterrupted[0][k]) for k in tensors)
    assert (history, metrics) == uninterrupted[1:]
