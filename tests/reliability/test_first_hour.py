"""A newcomer's first hour (issue #24): one name per concept, conflicting input refused, sentences, ``--import``.

Every command runs in a real child process (the ``cli`` fixture) on a tiny synthetic dataset;
each error must be one line on stderr, exit code 2, naming what was wrong and what to give.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import zslkit
from zslkit.training import recipe_for, train

OPTIONS = {"num_classes": 8, "images_per_class": 8, "channels": 8, "grid": 3, "embedding_dim": 6}
TINY = [arg for key, value in OPTIONS.items() for arg in ("--dataset-option", f"{key}={value}")]
QUICK = ["--no-progress", "--set", "batch_size=16", *TINY]

#: a component registered by a user's script, not by zslkit or a plugin
MY_BLOCK = '''
import torch
import zslkit
from zslkit.attention import AttentionOutput

@zslkit.register("attention", "max_pool_attention")
class MaxPool(torch.nn.Module):
    def __init__(self, feature_dim, embedding_dim, num_attributes):
        super().__init__()
        self.W = torch.nn.Parameter(torch.full((embedding_dim, feature_dim), 0.01))

    def forward(self, features, embeddings):
        return AttentionOutput(scores=(embeddings @ self.W @ features.amax(dim=-1).T).T, maps=None)
'''
WITH_MY_BLOCK = ["--set", "model_options.branches.a2v.attention=attribute_to_visual",
                 "--set", "model_options.branches.v2a.attention=max_pool_attention"]


def tiny():
    return zslkit.load_dataset("synthetic", **OPTIONS)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-epoch run of the recipe ``zslkit train`` uses with QUICK (trained in this process)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(tiny(), "msdn", {"epochs": 2, "batch_size": 16}, out_dir=out, progress=False)
    return out


def one_error(result, command: str) -> str:
    assert result.exit == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.error_lines) == 1, result.stderr
    assert result.error_lines[0].startswith(f"zslkit {command}: error: "), result.error_lines[0]
    return result.error_lines[0]


# ------------------------------------------------------------------ 4. one name per concept
def test_every_command_takes_dataset_option_and_the_old_name_works_with_a_note(cli, finished):
    for argv in (["train", "--dataset-option", "bogus=1"], ["eval", finished, "--dataset-option", "bogus=1"],
                 ["bench", "--dataset-option", "bogus=1", "--no-progress"]):
        line = one_error(cli(argv), argv[0])
        assert "synthetic" in line and "'bogus'" in line, line  # the loader saw the option
    result = cli(["train", "--data-option", "bogus=1", "--data-option", "other=2"])
    assert result.error_lines[0] == ("zslkit train: note: --data-option is another name of --dataset-option, "
                                     "the name all zslkit commands use")  # once, not per use
    assert len(result.error_lines) == 2 and "'bogus'" in result.error_lines[1]


def test_bench_takes_model_and_seed_like_train_and_the_old_names_with_a_note(cli):
    line = one_error(cli(["bench", "--model", "alee"]), "bench")
    assert "did you mean 'ale'" in line
    result = cli(["bench", "--model", "eszsl", "--seed", "0,1", *TINY, "--no-progress"])
    assert result.exit == 0, result.stderr
    assert "mean ± std over 2 seeds" in result.stdout and "| eszsl |" in result.stdout
    old = cli(["bench", "--methods", "eszsl", "--seeds", "2", *TINY, "--no-progress"])
    assert old.exit == 0 and old.stdout == result.stdout
    assert "zslkit bench: note: --methods is another name of --model" in old.stderr
    assert "zslkit bench: note: --seeds is another name of --seed, the name all zslkit commands use " \
           "(--seeds 2 is --seed 0,1)" in old.stderr


# ------------------------------------------------------------------ 5. conflicting or useless input
def test_a_config_of_another_model_is_refused_naming_both(cli, tmp_path):
    (tmp_path / "dazle.yaml").write_text("model: dazle\nepochs: 1\n")
    line = one_error(cli(["train", "--config", tmp_path / "dazle.yaml", "--model", "msdn", *TINY]), "train")
    assert re.search(r"config .*dazle.yaml is for model 'dazle', but model 'msdn' was asked for", line), line
    line = one_error(cli(["train", "--config", "dazle/synthetic", "--model", "msdn", *TINY]), "train")
    assert "recipe dazle/synthetic is for model 'dazle', but model 'msdn' was asked for" in line


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--random-init"], "--random-init applies only with --backbone, which was not given"),
    (["train", "--weights", "w.pth"], "--weights applies only with --backbone, which was not given"),
    (["train", "--dataset-root", "images"], "--dataset-root applies only with --backbone, which was not given"),
    (["eval", "run", "--official-model", "transzero"], "--official-model applies only with --official, which was not given"),
    (["eval", "run", "--normalize-embeddings"], "--normalize-embeddings applies only with --official"),
    (["bench", "--model", ","], "--model ',' names no benchmark case; give comma-separated names"),
    (["bench", "--dataset", " , "], "--dataset ' , ' names no dataset"),
    (["bench", "--seed", "1", "--seeds", "2"], "--seed 1 and --seeds 2 both give the seeds; give one of them"),
    (["train", "--resume"], "--resume continues the run in --out, which was not given"),
])
def test_flags_that_do_nothing_or_contradict_are_refused(cli, argv, expected):
    assert expected in one_error(cli(argv), argv[0])


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--backbone", "test_resnet", "--random-init", "--dataset-root", "images"],
     "a backbone reads images, but dataset 'synthetic' lists no image files"),
    (["eval", "missing.pth", "--official", "--official-model", "transzero", "--normalize-embeddings",
      "--dataset", "synthetic"], "missing.pth"),
])
def test_the_same_flags_with_what_they_need_get_past_the_check(cli, argv, expected):
    line = one_error(cli(argv), argv[0])
    assert expected in line and "applies only with" not in line, line


def test_resuming_a_directory_without_a_run_is_refused(cli, tmp_path):
    line = one_error(cli(["train", "--resume", "--out", tmp_path / "typo_dir", *QUICK]), "train")
    assert f"cannot resume from {tmp_path / 'typo_dir'}: the directory does not exist" in line
    (tmp_path / "empty").mkdir()
    line = one_error(cli(["train", "--resume", "--out", tmp_path / "empty", *QUICK]), "train")
    assert "holds no checkpoint (epoch_NNN.json) and no started run" in line and not (tmp_path / "typo_dir").exists()


def test_resuming_a_finished_run_with_fewer_epochs_is_refused_and_with_as_many_reports_it_honestly(cli, finished):
    line = one_error(cli(["train", "--epochs", "1", "--out", finished, "--resume", *QUICK]), "train")
    assert "epoch_002.json: cannot resume a run of 2 finished epochs to 1 epoch; give 2 epochs or more" in line
    result = cli(["train", "--epochs", "2", "--out", finished, "--resume", *QUICK])
    assert result.exit == 0, result.stderr
    assert "**synthetic: msdn, 2 epochs, seed 0**" in result.stdout
    assert f"checkpoint {finished / 'epoch_002.json'}; wrote" in result.stderr  # messages on stderr, the table alone on stdout
    assert json.loads((finished / "results.json").read_text())[0]["epochs"] == 2


def test_python_train_takes_a_dict_of_config_fields_over_the_models_recipe():
    data = tiny()
    result = train(data, "msdn", {"epochs": 1, "batch_size": 16}, progress=False)
    recipe = recipe_for("msdn", "synthetic").config
    assert len(result.history) == 1 and result.config.epochs == 1 and result.config.batch_size == 16
    assert result.config.lr == recipe.lr and result.config.loss_weights == recipe.loss_weights  # the rest: the recipe's
    assert result.recipe.line() == ("recipe: msdn/synthetic (zslkit/configs/msdn/synthetic.yaml, "
                                    "with batch_size, epochs given)")
    with pytest.raises(ValueError, match="the config dict is for model 'dazle', but model 'msdn' was asked for"):
        train(data, "msdn", {"model": "dazle"}, progress=False)
    with pytest.raises(ValueError, match="config: unknown key 'epoch'; did you mean 'epochs'"):
        train(data, "msdn", {"epoch": 1}, progress=False)
    with pytest.raises(TypeError, match="config must be None, a dict of TrainConfig fields, .* got int"):
        train(data, "msdn", 3, progress=False)


# ------------------------------------------------------------------ 6. sentences, not raw messages
def test_output_directories_that_cannot_be_used_are_refused_in_a_sentence(cli, tmp_path):
    line = one_error(cli(["train", "--out", "/proc/x", *QUICK]), "train")
    assert line.startswith("zslkit train: error: --out /proc/x: cannot create this directory there (")
    assert line.endswith("); give a directory you can write to") and "Errno" not in line
    (tmp_path / "afile").write_text("x")
    for command in ("train", "bench"):
        line = one_error(cli([command, "--out", tmp_path / "afile", "--no-progress"]), command)
        assert line.endswith(f"--out {tmp_path / 'afile'} is a file, not a directory; give a directory for the output files")


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--lr", "nan"], "argument --lr: expected a positive finite number, got 'nan'"),
    (["train", "--lr", "-1"], "argument --lr: expected a positive finite number, got '-1'"),
    (["train", "--epochs", "0"], "argument --epochs: expected a whole number of at least 1, got '0'"),
    (["train", "--device", "tpu"], "argument --device: 'tpu' is not a device PyTorch knows; give cpu, cuda, cuda:N or auto"),
    (["train", "--set", "lr=.nan"], "TrainConfig.lr must be a finite number, got nan"),
    (["train", "--set", "device=tpu"], "TrainConfig.device must be cpu, cuda, cuda:N or auto, got 'tpu'"),
    (["train", "--set", "epochs=three"], "epochs must be a whole number, found 'three'"),
])
def test_bad_values_are_named_with_their_flag_or_field(cli, argv, expected):
    line = one_error(cli([*argv, *TINY]), argv[0])
    assert expected in line, line
    assert " a int" not in line


def test_differing_seen_classes_are_named(cli, finished):
    other_split = [*TINY, "--dataset-option", "seed=3"]  # same sizes, other seen/unseen classes
    line = one_error(cli(["eval", finished, *other_split]), "eval")
    data = zslkit.load_dataset("synthetic", **OPTIONS, seed=3)
    model_seen = json.loads((finished / "epoch_002.json").read_text())["classes"]["seen"]
    only_model = sorted(set(model_seen) - set(data.seen_classes.tolist()))
    only_data = sorted(set(data.seen_classes.tolist()) - set(model_seen))
    assert only_model and only_data  # an independent look at what differs
    assert "the model's seen classes differ from those of dataset 'synthetic': " in line
    assert f"the model has class{'es' if len(only_model) > 1 else ''} {only_model[0]} ({data.class_names[only_model[0]]})" in line
    assert f"the dataset has class{'es' if len(only_data) > 1 else ''} {only_data[0]} ({data.class_names[only_data[0]]})" in line
    assert " vs " not in line


def test_one_epoch_is_one_epoch(cli, tmp_path):
    result = cli(["train", "--epochs", "1", *QUICK])
    assert result.exit == 0, result.stderr
    assert "**synthetic: msdn, 1 epoch, seed 0**" in result.stdout


def test_viz_on_a_features_only_synthetic_checkpoint_says_why_it_cannot_draw(cli, finished, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(tmp_path / "image.png")
    line = one_error(cli(["viz", "attention", "--checkpoint", finished, "--image", tmp_path / "image.png",
                          "--backbone", "test_resnet", "--random-init", "--image-size", "64", "--out", tmp_path / "m.png"]),
                     "viz")
    assert "the model was trained on the 8-channel features of dataset 'synthetic', backbone 'test_resnet' gives 96" in line
    assert "a features-only checkpoint has no backbone of its own to draw an image through" in line
    assert "zslkit train --backbone" in line and "zslkit.viz.attention_figure" in line
    assert not (tmp_path / "m.png").exists()


# ------------------------------------------------------------------ 7. components registered in a script
def test_a_checkpoint_of_a_script_registered_component_needs_import_and_says_so(cli, tmp_path):
    module = tmp_path / "my_blocks.py"
    module.write_text(MY_BLOCK)
    trained = cli(["train", "--epochs", "1", "--out", tmp_path / "run", *WITH_MY_BLOCK, *QUICK], setup=MY_BLOCK)
    assert trained.exit == 0, trained.stderr
    line = one_error(cli(["eval", tmp_path / "run", *TINY]), "eval")
    assert ("epoch_001.json: model 'msdn' uses attention 'max_pool_attention', which is not registered in this process"
            in line)
    assert "--import MODULE" in line and "plugin" in line and "truncated or corrupt" not in line
    imported = cli(["eval", tmp_path / "run", *TINY, "--import", module])
    assert imported.exit == 0, imported.stderr
    row = next(r for r in imported.stdout.splitlines() if r.startswith("| msdn (epoch 1) |"))
    t1 = float(row.split("|")[2])
    assert math.isclose(t1, 100 * json.loads((tmp_path / "run" / "results.json").read_text())[0]["T1"], abs_tol=0.051)
    for command in (["train", *QUICK], ["bench"], ["viz", "attention", "--checkpoint", "x", "--image", "y", "--out", "z"]):
        line = one_error(cli([*command, "--import", tmp_path / "missing.py"]), " ".join(command[:2 if command[0] == "viz" else 1]))
        assert f"--import {tmp_path / 'missing.py'}: no such file" in line
    line = one_error(cli(["train", "--import", "no_such_module_here", *QUICK]), "train")
    assert "--import no_such_module_here: no module named 'no_such_module_here'" in line

