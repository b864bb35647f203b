"""``zslkit bench`` from the command line."""

import pytest

from zslkit.cli import main
from zslkit.cli.options import parse_dataset_options


def small_args(small_options):
    return [arg for key, value in small_options.items() for arg in ("--dataset-option", f"{key}={value}")]


def test_bench_prints_the_table_and_writes_the_files(tmp_path, small_options, capsys):
    code = main(["bench", "--model", "sae,eszsl", "--no-progress", "--out", str(tmp_path), *small_args(small_options)])
    out = capsys.readouterr().out
    assert code == 0
    assert "| method | T1 | U | S | H | AUSUC |" in out and "| sae |" in out and "| eszsl |" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"results.csv", "results.json", "table.md", "curves_synthetic.png", "cells"}


def test_two_protocols_print_both_rows_and_the_difference(tmp_path, small_options, capsys):
    argv = ["bench", "--model", "sae", "--protocol", "validation,paper", "--no-progress", "--out", str(tmp_path)]
    assert main([*argv, *small_args(small_options)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| sae")]
    assert [line.split(" | ")[0] for line in lines] == ["| sae (validation)", "| sae (paper)", "| sae (paper − validation)"]
    validation, paper, gap = ([float(v.split(" ")[0]) for v in line.strip("| ").split(" | ")[1:]] for line in lines)
    assert gap == pytest.approx([p - v for p, v in zip(paper, validation)], abs=0.11)  # one-decimal rounding
    assert gap[3] >= 0.0  # H: choosing on test never loses
    assert {"gaps.csv", "gaps_synthetic.png", "curves_synthetic_paper.png"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize(("argv", "message"), [
    (["--dataset-option", "novalue"], "--dataset-option expects [DATASET.]KEY=VALUE, got 'novalue'"),
    (["--dataset-option", "cub.root=/data"], "names dataset 'cub', not one of synthetic"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["--seed", "1,x"], "--seed '1,x': expected comma-separated whole numbers, e.g. --seed 0,1,2"),
    (["--seed", "1", "--seeds", "2"], "--seed 1 and --seeds 2 both give the seeds; give one of them"),
    (["--model", "alee"], "did you mean 'ale'"),
    (["--protocol", "validation,validation"], "names a protocol twice"),
    (["--protocol", "validation,papers"], "did you mean 'paper'"),
])
def test_bad_arguments_give_one_line(argv, message, capsys):
    assert main(["bench", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_dataset_options_for_all_or_one_dataset():
    options = parse_dataset_options(["cub.root=/data/cub", "seed=3", "purity=[0.7, 0.9]"], ["cub", "sun"])
    assert options == {"cub": {"root": "/data/cub", "seed": 3, "purity": [0.7, 0.9]},
                       "sun": {"seed": 3, "purity": [0.7, 0.9]}}


def test_list_shows_cases_and_protocols(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "  ale  (method ale, from zslkit, default)" in out and "  validation: " in out and "  paper: " in out


@pytest.mark.parametrize(("argv", "line"), [
    (["--dataset", "cub"], "zslkit bench: error: dataset 'cub' needs option 'xlsa17': give --dataset-option xlsa17=PATH"),
    (["--dataset", "synthetic,sun"],
     "zslkit bench: error: dataset 'sun' needs option 'xlsa17': give --dataset-option sun.xlsa17=PATH"),
])
def test_a_missing_dataset_option_is_named_before_any_progress_bar(argv, line, capsys):
    assert main(["bench", *argv]) == 2  # progress bars on: none may start before the error
    captured = capsys.readouterr()
    assert captured.err == line + "\n"
    assert captured.out == ""


def test_train_names_a_missing_dataset_option(capsys):
    assert main(["train", "--dataset", "awa2", "--no-progress"]) == 2
    assert capsys.readouterr().err == "zslkit train: error: dataset 'awa2' needs option 'xlsa17': give --dataset-option xlsa17=PATH\n"
