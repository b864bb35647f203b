"""The protocols' stop-at-an-epoch paths, on a scripted runner whose quality per epoch is set by hand.

Validation must choose an epoch before the last, and two protocols ask for different epochs
of one setting: the refit stops there (or, when a runner's epochs are prefixes, a longer
training is evaluated there), and every number is checked against a hand-computed value.
"""

from __future__ import annotations

import pytest

from tests.bench.scripted import DATA, ScriptedRunner, expected_h
from zslkit.bench import protocols
from zslkit.bench.protocols import Plan, Protocol, TestRun, run_protocols
from zslkit.datasets import make_synthetic


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(**DATA)


#: validation peaks at epoch 2 of a1 (0.6); test keeps improving (a1's epoch 4, 0.9, is the paper pick)
VAL = {"a1": [2, 6, 4, 3], "a2": [1, 5, 5, 2]}
TEST = {"a1": [3, 5, 7, 9], "a2": [2, 8, 4, 1]}


def trainval_fits(runner):
    return [fit[1:3] for fit in runner.fits if fit[0] == "test"]


@pytest.mark.parametrize("prefixes", [True, False])
def test_validation_alone_refits_only_up_to_the_earlier_epoch_it_chose(dataset, prefixes):
    runner = ScriptedRunner(VAL, TEST, prefixes)
    out = protocols.validation_protocol.run(runner, dataset, 0, False)
    assert out["selected"]["params"] == {"a": "a1"} and out["selected"]["epoch"] == 2
    assert trainval_fits(runner) == [("a1", 2)]  # one refit on trainval, stopped at epoch 2
    assert [s for s in runner.scored if s[0] == "test"] == [("test", "a1", 2)]  # test scored once, at epoch 2
    assert out["metrics"]["H"] == pytest.approx(expected_h(dataset, TEST["a1"][1]))
    assert out["gamma"] == 0.0  # the middle of the validation's best interval [-1, 1)
    assert [h["epoch"] for h in out["train_history"]] == [1, 2]
    assert [e["epoch"] for e in out["epochs"]] == [1, 2, 3, 4]  # the validation log of the chosen setting


def test_shared_with_paper_the_validation_refit_is_paper_training_read_at_epoch_2(dataset):
    runner = ScriptedRunner(VAL, TEST, prefixes=True)
    out = run_protocols([protocols.validation_protocol, protocols.paper_protocol], runner, dataset, 0, False)
    assert sorted(trainval_fits(runner)) == [("a1", None), ("a2", None)]  # each setting trained once, to the end
    val, paper = out["validation"], out["paper"]
    assert val["selected"]["epoch"] == 2 and val["metrics"]["H"] == pytest.approx(expected_h(dataset, 5))
    assert paper["selected"]["epoch_H"] == 4 and paper["selected"]["params"] == {"a": "a1"}
    assert paper["metrics"]["H"] == pytest.approx(expected_h(dataset, 9))
    # validation's history stops at its epoch and carries no test metric; paper's has one per epoch
    assert [h["epoch"] for h in val["train_history"]] == [1, 2]
    assert not any(k.startswith("test_") for h in val["train_history"] for k in h)
    assert [h["epoch"] for h in paper["train_history"]] == [1, 2, 3, 4]
    assert [h["test_H"] for h in paper["train_history"]] == pytest.approx([expected_h(dataset, q) for q in TEST["a1"]])
    # every epoch of each training scored on test once, shared by both protocols
    assert sorted(s for s in runner.scored if s[0] == "test") == [("test", a, e) for a in ("a1", "a2") for e in range(1, 5)]


def test_without_prefixes_the_validation_refit_is_its_own_training_stopped_at_epoch_2(dataset):
    runner = ScriptedRunner(VAL, TEST, prefixes=False)
    out = run_protocols([protocols.validation_protocol, protocols.paper_protocol], runner, dataset, 0, False)
    assert sorted(trainval_fits(runner), key=str) == [("a1", 2), ("a1", None), ("a2", None)]
    stopped = next(f for f in runner.fits if f[:3] == ("test", "a1", 2))
    assert stopped[3] is False  # evaluated once, when it ends: no per-epoch evaluation needed
    assert out["validation"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 5))
    assert out["paper"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 9))
    assert [h["epoch"] for h in out["validation"]["train_history"]] == [1, 2]


def at_epoch(name: str, epoch: int | None, gamma: float = 0.0) -> Protocol:
    """A planned protocol asking for setting a1 on test after ``epoch`` epochs (``None``: at the end)."""

    def plan(runner, dataset, seed, progress=False):
        def finish(results):
            (result,) = results
            return {"metrics": result.log[-1][1].metrics(), "epoch": result.log[-1][0]["epoch"],
                    "history": [h["epoch"] for h in result.history], "log": len(result.log)}
        return Plan([TestRun({"a": "a1"}, epoch, gamma)], finish)

    return Protocol(name, f"a1 at epoch {epoch}", plan=plan)


@pytest.mark.parametrize("prefixes", [True, False])
def test_two_protocols_asking_for_different_epochs_of_one_setting(dataset, prefixes):
    runner = ScriptedRunner(VAL, TEST, prefixes)
    out = run_protocols([at_epoch("at3", 3), protocols.validation_protocol, at_epoch("at1", 1)], runner, dataset, 0, False)
    if prefixes:  # one training, stopped at the latest epoch asked for, read at epochs 1, 2 and 3
        assert trainval_fits(runner) == [("a1", 3)]
        assert sorted(s for s in runner.scored if s[0] == "test") == [("test", "a1", 1), ("test", "a1", 2), ("test", "a1", 3)]
    else:
        assert sorted(trainval_fits(runner)) == [("a1", 1), ("a1", 2), ("a1", 3)]
    for name, epoch in (("at3", 3), ("at1", 1)):
        assert out[name]["epoch"] == epoch and out[name]["log"] == 1
        assert out[name]["history"] == list(range(1, epoch + 1))
        assert out[name]["metrics"]["H"] == pytest.approx(expected_h(dataset, TEST["a1"][epoch - 1]))
    assert out["validation"]["metrics"]["H"] == pytest.approx(expected_h(dataset, TEST["a1"][1]))
    assert [h["epoch"] for h in out["validation"]["train_history"]] == [1, 2]


def test_an_epoch_and_the_end_of_one_setting_share_the_full_training(dataset):
    runner = ScriptedRunner(VAL, TEST, prefixes=True)
    out = run_protocols([at_epoch("end", None), at_epoch("at3", 3)], runner, dataset, 0, False)
    assert trainval_fits(runner) == [("a1", None)]  # one full training, read at epoch 3 and at its end
    assert out["end"]["epoch"] == 4 and out["end"]["history"] == [1, 2, 3, 4]
    assert out["end"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 9))
    assert out["at3"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 7)) and out["at3"]["history"] == [1, 2, 3]


def test_a_given_gamma_is_applied_on_test_at_the_asked_epoch(dataset):
    """gamma 1.5 predicts every image unseen (seen scores 1 - 1.5 < 0): S = 0, U = the unseen classes' share."""
    runner = ScriptedRunner(VAL, TEST, prefixes=True)
    out = run_protocols([at_epoch("plain", 2), at_epoch("shifted", 2, gamma=1.5)], runner, dataset, 0, False)
    n = len(dataset.unseen_classes)
    assert out["shifted"]["metrics"]["S"] == 0.0 and out["shifted"]["metrics"]["H"] == 0.0
    assert out["shifted"]["metrics"]["U"] == pytest.approx((5 * n // 10) / n)
    assert out["plain"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 5))
    assert trainval_fits(runner) == [("a1", 2)]


def test_validation_applies_its_own_gamma_on_test_not_the_best_one_there(dataset):
    """Seen scores biased by 1.5 on test only: test's best gamma is 1.5, validation's is 0. With 0 every
    unseen image (flip 1.5 - 1 = 0.5 > 0) is predicted seen: U = 0, H = 0, while paper, sweeping gamma
    on test, keeps every prediction."""
    runner = ScriptedRunner(VAL, TEST, prefixes=True, seen_bias={"test": 1.5})
    out = run_protocols([protocols.validation_protocol, protocols.paper_protocol], runner, dataset, 0, False)
    s = (5 * len(dataset.seen_classes) // 10) / len(dataset.seen_classes)
    assert out["validation"]["gamma"] == 0.0
    assert (out["validation"]["metrics"]["U"], out["validation"]["metrics"]["S"]) == (0.0, pytest.approx(s))
    assert out["paper"]["gamma"] == 1.5 and out["paper"]["metrics"]["H"] == pytest.approx(expected_h(dataset, 9))


def test_validation_ties_go_to_the_earliest_epoch_and_the_first_setting(dataset):
    runner = ScriptedRunner({"a1": [2, 6, 6, 3], "a2": [1, 6, 6, 6]}, TEST, prefixes=True)
    out = protocols.validation_protocol.run(runner, dataset, 0, False)
    assert out["selected"]["params"] == {"a": "a1"} and out["selected"]["epoch"] == 2
    assert trainval_fits(runner) == [("a1", 2)]


def test_validation_choosing_the_last_epoch_asks_for_the_full_training(dataset):
    runner = ScriptedRunner({"a1": [1, 2, 3, 4], "a2": [1, 1, 1, 1]}, TEST, prefixes=False)
    out = protocols.validation_protocol.run(runner, dataset, 0, False)
    assert out["selected"]["epoch"] == 4 and trainval_fits(runner) == [("a1", None)]
    assert out["metrics"]["H"] == pytest.approx(expected_h(dataset, 9))
