"""Data-parallel training on CPU: 2 gloo processes under torchrun against single-process runs.

The torchrun job (``ddp_worker.py``) runs once per module; each test checks one
property of what it wrote. Also here: why the loss is computed on the gathered
global batch (the per-rank alternative, checked directly), the shard helpers, and
the :mod:`zslkit.distributed` helpers outside a process group.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
from tests.conftest import torchrun
from zslkit import distributed
from zslkit.cli import main as cli_main
from zslkit.distributed import shard_counts
from zslkit.training import predict_scores, train
from zslkit.training.data import shard

_spec = importlib.util.spec_from_file_location("ddp_worker", Path(__file__).with_name("ddp_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


@pytest.fixture(scope="module")
def ddp_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    torchrun(str(Path(worker.__file__)), str(out), cwd=out)
    return out


@pytest.fixture(scope="module")
def data():
    return worker.dataset()


@pytest.fixture(scope="module")
def single(data):
    return train(data, "msdn", worker.CONFIG, split=worker.SPLIT, progress=False)


def assert_matches(model: torch.nn.Module, path: Path, rtol: float = 1e-5, noise_only: tuple[str, ...] = ()) -> None:
    """Every float tensor of ``path`` within ``rtol`` (relative to the tensor's largest entry) of ``model``'s,
    but those whose names end with one of ``noise_only``."""
    theirs = load_file(str(path))
    ours = model.state_dict()
    assert theirs.keys() == ours.keys()
    for key, value in ours.items():
        if key.endswith(noise_only):
            continue
        if value.is_floating_point():
            scale = float(value.abs().max()) or 1.0
            assert float((value - theirs[key]).abs().max()) <= rtol * scale, key
        else:
            assert torch.equal(value, theirs[key]), key


def same_files(a: Path, b: Path) -> bool:
    ta, tb = load_file(str(a)), load_file(str(b))
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.mark.slow
def test_ddp_training_equals_single_process_with_the_same_global_batch(ddp_out, single, data):
    # the case covers uneven shards: batches of 13 over 2 ranks (7 + 6) and a last batch of 1 (1 + 0)
    assert len(data.splits[worker.SPLIT]) % worker.CONFIG.batch_size == 1
    for rank in (0, 1):
        assert_matches(single.model, ddp_out / f"straight_{rank}.safetensors")
    assert same_files(ddp_out / "straight_0.safetensors", ddp_out / "straight_1.safetensors")
    history = json.loads((ddp_out / "history_0.json").read_text())
    for ours, theirs in zip(single.history, history):
        for key in ("loss", "loss_attribute_ce", "loss_self_calibration", "loss_semantic_distillation"):
            assert theirs[key] == pytest.approx(ours[key], rel=1e-6), key


@pytest.mark.slow
def test_ddp_transzero_pp_equals_single_process(ddp_out, data):
    single_tzpp = train(data, "transzero_pp", worker.TZPP_CONFIG, split=worker.SPLIT, progress=False)
    # softmax ignores a key bias (q . (k + b) shifts every logit of a row alike): its true gradient is 0, it starts
    # at 0 (the released code's init) and both runs step Adam on rounding noise, so its values are not compared
    skip = ("attn.to_k.bias",)
    assert any(k.endswith(skip) for k in single_tzpp.model.state_dict())
    for rank in (0, 1):
        assert_matches(single_tzpp.model, ddp_out / f"transzero_pp_{rank}.safetensors", noise_only=skip)


@pytest.mark.slow
def test_predictions_are_split_over_ranks_and_gathered_on_every_rank(ddp_out, single, data):
    expected = predict_scores(single.model, data, data.splits["test_unseen"])
    scores = [np.load(ddp_out / f"scores_{rank}.npy") for rank in (0, 1)]
    assert np.array_equal(scores[0], scores[1])
    assert np.allclose(scores[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_only_rank_0_writes_checkpoints_and_resume_continues_exactly(ddp_out, single):
    assert json.loads((ddp_out / "saves_0.json").read_text()) == [1, 2]
    assert json.loads((ddp_out / "saves_1.json").read_text()) == []
    run = ddp_out / "run"
    assert sorted(p.name for p in run.glob("epoch_*")) == [
        "epoch_001.json", "epoch_001.safetensors", "epoch_002.json", "epoch_002.safetensors",
    ]
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
    for rank in (0, 1):
        assert same_files(ddp_out / f"resumed_{rank}.safetensors", ddp_out / "straight_0.safetensors")
    assert_matches(zslkit.training.load_model(run), ddp_out / "straight_0.safetensors")


@pytest.mark.slow
def test_end_to_end_finetuning_under_ddp_equals_single_process(ddp_out, data):
    result = train(
        data, "msdn", worker.E2E_CONFIG, split=worker.SPLIT, backbone=worker.backbone(),
        inputs=worker.images(data.num_images), progress=False,
    )
    for rank in (0, 1):
        assert_matches(result.model, ddp_out / f"e2e_{rank}.safetensors")


@pytest.mark.slow
def test_recipe_options_under_ddp_equal_single_process(ddp_out, data):
    """Augmentation, micro-batches, a schedule, weight-decay groups and frozen stages: the same training on 2 ranks."""
    result = train(data, "msdn", worker.OPTIONS_CONFIG, split=worker.SPLIT, backbone=worker.backbone(),
                   inputs=worker.images(data.num_images), progress=False)
    for rank in (0, 1):
        assert_matches(result.model, ddp_out / f"options_{rank}.safetensors")


@pytest.mark.slow
def test_torchrun_zslkit_train_prints_once_and_matches_a_single_process(tmp_path, capsys):
    options = [f"--dataset-option={k}={v}" for k, v in worker.TINY.items()]
    args = ["train", "--epochs", "1", "--batch-size", "13", "--no-progress", *options]
    result = torchrun("-m", "zslkit", *args, "--out", str(tmp_path / "ddp"), cwd=tmp_path)
    assert cli_main([*args, "--out", str(tmp_path / "single")]) == 0
    single_rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| msdn")]
    ddp_rows = [line for line in result.stdout.splitlines() if line.startswith("| msdn")]
    assert len(ddp_rows) == 1 and ddp_rows == single_rows  # printed by rank 0 alone, same metrics
    assert json.loads((tmp_path / "ddp" / "results.json").read_text())[0]["processes"] == 2
    assert (tmp_path / "ddp" / "epoch_001.json").is_file()


def gradients(model, loss_fn, features, labels):
    output = model(features)
    return torch.autograd.grad(loss_fn(output, labels), [p for p in model.parameters() if p.requires_grad])


@pytest.mark.parametrize("term", ["attribute_ce", "self_calibration", "semantic_distillation"])
def test_per_rank_losses_would_only_be_exact_for_batch_means(term, data):
    """What DDP would average without the gather: the gradients of each shard's own loss.

    ``attribute_ce`` and ``semantic_distillation`` are means over images: equal shards give
    the global gradient, uneven ones do not. ``self_calibration`` is ``-log`` of a batch mean:
    no sharding gives it. Hence zslkit gathers the outputs and computes the loss once on the
    global batch (checked end to end above).
    """
    torch.manual_seed(0)
    model = zslkit.create_model(
        "msdn", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
        seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=data.feature_dim,
    )
    # move W2, U1, U2 off their zero init so every term has a non-trivial gradient
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    loss_fn = lambda output, labels: model.loss_terms[term](output, labels, model.classes)  # noqa: E731
    batch = data.splits["trainval"][:12]
    features = torch.as_tensor(np.asarray(data.features[batch]), dtype=torch.float32)
    labels = torch.as_tensor(data.labels[batch])
    full = gradients(model, loss_fn, features, labels)

    def per_rank_average(world: int) -> list[torch.Tensor]:
        parts = [gradients(model, loss_fn, features[s], labels[s]) for s in np.array_split(np.arange(12), world)]
        return [sum(grads) / world for grads in zip(*parts)]

    def gap(grads) -> float:
        return max(float((g - f).abs().max() / f.abs().max()) for g, f in zip(grads, full))

    even, uneven = gap(per_rank_average(2)), gap(per_rank_average(5))  # 6 + 6; 3 + 3 + 2 + 2 + 2
    assert uneven > 1e-3
    if term == "self_calibration":
        assert even > 1e-3
    else:
        assert even < 1e-5


def test_shards_are_contiguous_near_equal_and_restore_the_batch():
    batch = np.array([9, 4, 7, 1, 3])
    assert shard_counts(5, 2) == [3, 2] and shard_counts(1, 3) == [1, 0, 0]
    parts = [shard(batch, rank, 2) for rank in (0, 1)]
    assert parts[0].tolist() == [9, 4, 7] and parts[1].tolist() == [1, 3]
    assert np.concatenate([shard(batch, r, 3) for r in range(3)]).tolist() == batch.tolist()
    assert shard(np.array([5]), 1, 2).tolist() == []
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\)"):
        shard(batch, 2, 2)


def test_helpers_outside_a_process_group_answer_for_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.init() is False and not distributed.is_distributed()
    x = torch.arange(6.0).reshape(3, 2)
    assert distributed.all_gather_rows(x) is x
    assert distributed.gather_array(x.numpy()).tolist() == x.tolist()
    assert distributed.rank_device(torch.device("cpu")) == torch.device("cpu")
    assert distributed.backend_for("cpu") == "gloo"
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="RANK, MASTER_ADDR, MASTER_PORT unset: start the processes with torchrun"):
        distributed.init()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer, found 'two'"):
        distributed.launched_world_size()


def test_leaving_right_after_backward_collectives_exits_cleanly(tmp_path):
    """Three torchrun jobs that end right after backward all-reduces: each exits 0 on both ranks.

    Without the barrier and pause in ``teardown(synchronize=True)`` about a quarter of such
    jobs aborted on a busy 2-core machine (``terminate called without an active exception``).
    """
    script = str(Path(__file__).with_name("ddp_exit_worker.py"))
    for run in range(3):
        out = tmp_path / str(run)
        out.mkdir()
        torchrun(script, str(out), cwd=out)
        done = [json.loads((out / f"done_{r}.json").read_text()) for r in range(2)]
        # each step adds 16 rows x 2 (the all-reduce) to every bias gradient; DDP averages over the 2 ranks
        assert done[0] == done[1] == {"steps": 19, "bias_grad": [19 * 16 * 2.0] * 8}


def test_teardown_synchronized_leaves_a_one_process_group(tmp_path, monkeypatch):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    slept = []
    monkeypatch.setattr(distributed.time, "sleep", slept.append)
    distributed.teardown(synchronize=True)
    assert not dist.is_initialized() and slept == [distributed.DRAIN_SECONDS]
    distributed.teardown(synchronize=True)  # nothing to leave: no pause either
    assert slept == [distributed.DRAIN_SECONDS]
