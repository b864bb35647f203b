"""What a user sees: results alone on stdout, progress and messages on stderr (naming the run), file modes, plots."""

import os
import stat
import subprocess
import sys

import numpy as np

from tests.bench.conftest import SMALL
from tests.conftest import REPO

OPTIONS = {"bench": "--dataset-option", "train": "--dataset-option"}


def zslkit(command, *args, umask=0o022):
    options = [arg for key, value in SMALL.items() for arg in (OPTIONS[command], f"{key}={value}")]
    result = subprocess.run([sys.executable, "-m", "zslkit", command, *options, *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600, umask=umask)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def only_a_table(stdout):
    lines = stdout.strip().splitlines()
    return lines[0].startswith("**") and lines[1] == "" and all(line.startswith("|") for line in lines[2:])


def test_bench_writes_the_table_alone_on_stdout_and_names_each_run_on_stderr(tmp_path):
    stdout, stderr = zslkit("bench", "--model", "sae,dazle", "--out", str(tmp_path))
    assert only_a_table(stdout), stdout  # `zslkit bench ... > table.txt` captures the table alone
    assert "zslkit.training: dazle on synthetic/validation (trainval, seed 0): epoch 1/10 loss=" in stderr
    assert "zslkit.training: dazle on synthetic (trainval, seed 0): epoch 1/" in stderr  # the final training
    assert "zslkit.bench.protocols: dazle: chose epoch" in stderr
    assert "zslkit.bench: cell synthetic / sae / seed 0 (validation): T1 " in stderr
    assert "zslkit.bench: recipe: dazle/synthetic" in stderr and "wrote " in stderr and f" files to {tmp_path} (table.md" in stderr

    quiet_out, quiet = zslkit("bench", "--model", "sae,dazle", "--out", str(tmp_path), "--recompute", "--no-progress")
    assert only_a_table(quiet_out) and quiet_out == stdout
    cells = [line for line in quiet.splitlines() if line.startswith("zslkit.bench: cell ")]
    assert [line.split(" (")[0] for line in cells] == ["zslkit.bench: cell synthetic / sae / seed 0",
                                                       "zslkit.bench: cell synthetic / dazle / seed 0"]
    assert "epoch 1/" not in quiet and "chose epoch" not in quiet and "cell/s" not in quiet  # nor phases, nor bars


def test_train_keeps_one_line_per_epoch_without_progress_and_writes_files_of_one_mode(tmp_path):
    stdout, stderr = zslkit("train", "--model", "msdn", "--epochs", "2", "--no-progress", "--out", str(tmp_path),
                            umask=0o027)
    assert only_a_table(stdout), stdout
    epochs = [line for line in stderr.splitlines() if "epoch " in line and "/2 " in line]
    assert [line.split(" loss=")[0] for line in epochs] == [
        "zslkit.training: msdn on synthetic (trainval, seed 0): epoch 1/2",
        "zslkit.training: msdn on synthetic (trainval, seed 0): epoch 2/2"]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes["epoch_002.safetensors"] == modes["epoch_002.json"] == modes["results.json"] == 0o640, modes


def test_the_training_plot_marks_the_chosen_epoch_and_gives_each_loss_its_own_axis():
    from zslkit.bench.plots import training_figure

    history = [{"epoch": e, "loss": 90.0 - e, "loss_attribute_ce": 0.5 / e, "loss_self_calibration": -0.1 * e}
               for e in range(1, 5)]
    cell = {"method": "msdn", "dataset": "synthetic", "seed": 0, "protocol": "validation", "train_history": history,
            "selected": {"epoch": 4}, "epochs": [{"epoch": e, "val_H": 0.1 * e, "val_T1": 0.05 * e} for e in range(1, 7)]}
    fig = training_figure(cell)
    *losses, metrics = fig.axes
    assert [ax.get_ylabel() for ax in losses] == ["total loss", "attribute_ce", "self_calibration"]
    for ax, key in zip(losses, ("loss", "loss_attribute_ce", "loss_self_calibration")):
        y = ax.lines[0].get_ydata()
        np.testing.assert_allclose(y, [h[key] for h in history])
        assert ax.get_ylim()[0] <= min(y) and ax.get_ylim()[1] - ax.get_ylim()[0] < 3 * (max(y) - min(y))  # own scale
    for ax in fig.axes:
        chosen = [line for line in ax.lines if line.get_label() == "chosen epoch 4"]
        assert len(chosen) == 1 and list(chosen[0].get_xdata()) == [4, 4]
        assert ax.get_xlim() == (0.5, 6.5)  # one epoch axis for the final training (1-4) and the selection run (1-6)
    title = fig._suptitle.get_text()
    assert "final training on trainval (epochs 1-4, stopped at the chosen epoch)" in title
    assert "every epoch scored on the validation split" in title
    assert [line.get_label() for line in metrics.lines] == ["val_H", "val_T1", "chosen epoch 4"]


def test_python_metrics_say_they_are_fractions():
    from zslkit.metrics.evaluation import evaluate

    scores = np.eye(4)[[0, 1, 2, 3, 0]]  # class 1: one of its two images right (per-class mean S: (1 + 0.5) / 2)
    ev = evaluate(scores, np.array([0, 1, 2, 3, 1]), np.array([0, 1]), np.array([2, 3]), calibration=0.0)
    assert repr(ev).startswith("Evaluation(T1=1.0000, U=1.0000, S=0.7500, H=0.8571, ")
    assert "fractions of 1, in %: T1 100.0 U 100.0 S 75.0 H 85.7" in repr(ev)


def test_a_reader_that_stops_early_ends_the_listing_quietly():
    """``zslkit list | head -1``: the closed pipe stops the command without an error line or a traceback."""
    listing = subprocess.Popen([sys.executable, "-m", "zslkit", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    first = listing.stdout.readline()
    listing.stdout.close()  # what head does after its first line
    stderr = listing.stderr.read().decode()
    assert listing.wait(timeout=120) in (0, 141) and first.strip(), (first, stderr)
    assert stderr == "", stderr
