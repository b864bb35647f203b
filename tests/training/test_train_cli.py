"""``zslkit train`` and ``zslkit eval`` end to end on a tiny synthetic dataset."""

import torch
import torch.nn.functional as F

import zslkit
from zslkit.cli import main

DATA = ["--dataset-option", "num_classes=8", "--dataset-option", "images_per_class=8", "--dataset-option", "channels=8",
        "--dataset-option", "grid=3", "--dataset-option", "embedding_dim=6"]


def table_row(text, method):
    row = next(line for line in text.splitlines() if line.startswith(f"| {method} "))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_train_then_eval_print_the_same_table(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--no-progress", "--out", str(out), "--set", "batch_size=16", *DATA]) == 0
    trained = capsys.readouterr().out
    assert "| method | T1 | U | S | H | AUSUC |" in trained
    assert (out / "epoch_002.json").is_file() and (out / "results.json").is_file()
    assert main(["eval", str(out), *DATA]) == 0
    evaluated = capsys.readouterr().out
    assert table_row(evaluated, "msdn (epoch 2)")[1:] == table_row(trained, "msdn")[1:]


def test_train_dazle_and_bad_options(capsys):
    assert main(["train", "--model", "dazle", "--epochs", "1", "--no-progress", *DATA]) == 0
    assert "| dazle |" in capsys.readouterr().out
    assert main(["train", "--set", "loss_weights.bogus=1", "--epochs", "1", "--no-progress", *DATA]) == 2
    assert "zslkit train: error: config loss_weights name term 'bogus'" in capsys.readouterr().err
    assert main(["train", "--set", "epochs", *DATA]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_eval_of_an_official_state_dict(tmp_path, capsys):
    dataset = zslkit.load_dataset("synthetic", num_classes=8, images_per_class=8, channels=8, grid=3, embedding_dim=6)
    K, N_ATTR, C, D = dataset.num_classes, dataset.num_attributes, dataset.feature_dim, 6
    mask = torch.ones(1, K)
    mask[0, dataset.seen_classes] = -1
    g = torch.Generator().manual_seed(0)
    state = {"V": torch.randn(N_ATTR, D, generator=g), "att": F.normalize(torch.tensor(dataset.class_attributes), dim=1),
             "W_1": torch.randn(D, C, generator=g), "W_2": torch.zeros(D, C), "W_3": torch.zeros(D, C),
             "W_1_1": torch.zeros(C, D), "W_2_1": torch.zeros(D, C), "W_3_1": torch.zeros(C, D),
             "mask_bias": mask, "bias": torch.tensor(1.0), "weight_ce": torch.eye(K)}
    torch.save(state, tmp_path / "official.pth")
    assert main(["eval", str(tmp_path / "official.pth"), "--official", "--dataset", "synthetic", *DATA]) == 0
    assert "| msdn (official) |" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "official.pth"), "--official"]) == 2
    assert "--official needs --dataset" in capsys.readouterr().err
