"""Several protocols in one run (`validation,paper`): trainings shared, each setting trained at most once,
the same numbers as separate runs, and the paper row never below the validation row for H."""

import csv
import json
from collections import Counter

import numpy as np
import pytest

from zslkit.bench import protocols
from zslkit.bench.case import BenchmarkCase
from zslkit.bench.harness import _protocols, run_benchmark, write_outputs
from zslkit.bench.method_runner import MethodRunner
from zslkit.bench.model_runner import ModelRunner
from zslkit.bench.protocols import Protocol, run_protocols

BOTH = [protocols.validation_protocol, protocols.paper_protocol]


@pytest.fixture
def trainings(monkeypatch):
    """Every fit of every runner: (component, dataset name, seed, params, epochs)."""
    calls = []
    for cls in (MethodRunner, ModelRunner):
        real = cls.fit

        def fit(self, dataset, params, seed, *, epochs=None, on_epoch=None, _real=real):
            calls.append((self.component, dataset.name, seed, json.dumps(params, sort_keys=True), epochs))
            return _real(self, dataset, params, seed, epochs=epochs, on_epoch=on_epoch)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


def settings(calls):
    """What a training is, whatever epoch it stopped at: (component, dataset, seed, params)."""
    return [call[:4] for call in calls]


CASES = [
    BenchmarkCase("eszsl", "eszsl", param_grid={"gamma": [0.1, 10.0], "lambda_": [0.1, 1.0]}),
    BenchmarkCase("ale", "ale", options={"epochs": 4}, param_grid={"lr": [0.01, 0.1]}),
    BenchmarkCase("msdn", "msdn", kind="model", train_config={"epochs": 3}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_both_protocols_train_each_setting_once_and_match_separate_runs(case, small_dataset, trainings):
    alone = {p.name: p.run(case.runner(), small_dataset, 1, False) for p in BOTH}
    separate = list(trainings)
    trainings.clear()
    together = run_protocols(BOTH, case.runner(), small_dataset, 1, False)
    assert max(Counter(settings(trainings)).values()) == 1  # no (method, seed, setting) trained twice ...
    assert set(settings(trainings)) == set(settings(separate))  # ... and every one the separate runs needed
    for name in ("validation", "paper"):
        assert together[name]["metrics"] == alone[name]["metrics"], name  # sharing changes no number
        assert together[name]["gamma"] == alone[name]["gamma"]
        assert together[name]["selected"] == alone[name]["selected"]
    assert together["validation"]["metrics"]["H"] <= together["paper"]["metrics"]["H"]


def test_the_validation_refit_is_the_paper_training_stopped_at_the_chosen_epoch(small_dataset, trainings):
    """A runner whose epochs are prefixes serves validation's refit (epochs=e) from paper's longer training."""
    out = run_protocols(BOTH, CASES[2].runner(), small_dataset, 0, False)
    on_trainval = [call for call in trainings if call[1] == "synthetic"]
    assert on_trainval == [("msdn", "synthetic", 0, "{}", None)]  # one training on trainval, to the end
    chosen = out["validation"]["selected"]["epoch"]
    assert [h["epoch"] for h in out["validation"]["train_history"]] == list(range(1, chosen + 1))
    assert not any(k.startswith("test_") for h in out["validation"]["train_history"] for k in h)


@pytest.mark.parametrize("runner", [
    CASES[1].runner(),
    CASES[2].runner(),
], ids=["method", "model"])
def test_a_fit_stopped_at_an_epoch_equals_that_epoch_of_a_longer_fit(runner, small_dataset):
    assert runner.epochs_are_prefixes
    idx = np.arange(len(small_dataset.labels))
    seen = {}

    def keep(epoch, predictor):
        seen[epoch] = runner.scores(predictor, small_dataset, idx)

    runner.fit(small_dataset, {}, 2, on_epoch=keep)
    assert sorted(seen) == [1, 2, 3, 4] if runner.kind == "method" else [1, 2, 3]
    short = runner.fit(small_dataset, {}, 2, epochs=2)
    np.testing.assert_array_equal(runner.scores(short.predictor, small_dataset, idx), seen[2])


class NoPrefixRunner(MethodRunner):
    epochs_are_prefixes = False


def test_without_the_prefix_property_a_shorter_refit_is_its_own_training(small_dataset, trainings):
    runner = NoPrefixRunner("ale", {"epochs": 4}, {"lr": [0.1]})
    out = run_protocols(BOTH, runner, small_dataset, 0, False)
    on_trainval = [call[4] for call in trainings if call[1] == "synthetic"]
    chosen = out["validation"]["selected"]["epoch"]
    assert sorted(on_trainval, key=str) == ([None] if chosen == 4 else sorted([chosen, None], key=str))


@pytest.fixture(scope="module")
def both_protocols(tmp_path_factory, small_options):
    """The default cases (baselines, MSDN, DAZLE) on the small built-in dataset under validation,paper."""
    out = tmp_path_factory.mktemp("both")
    result = run_benchmark(["synthetic"], None, protocol="validation,paper", seeds=[0], out_dir=out,
                           dataset_options={"synthetic": small_options}, progress=False)
    return result, out, write_outputs(result, out)


def test_the_paper_row_is_never_below_the_validation_row_for_h(both_protocols):
    result, _, _ = both_protocols
    rows = {(r["method"], r["protocol"]): r for r in result.rows()}
    methods = {m for m, _ in rows}
    assert {"eszsl", "sae", "ale", "devise", "sje", "latem", "msdn", "dazle"} <= methods
    for method in methods:
        assert rows[method, "paper"]["H"] >= rows[method, "validation"]["H"] - 1e-12, method


def test_gap_rows_are_paper_minus_validation_in_table_csv_json_and_chart(both_protocols):
    result, out, written = both_protocols
    rows = {(r["method"], r["protocol"]): r for r in result.rows()}
    gaps = {g["method"]: g for g in result.gaps()}
    for method, gap in gaps.items():
        assert gap["protocol"] == "paper - validation"
        for column in ("T1", "U", "S", "H", "AUSUC"):
            assert gap[column] == pytest.approx(rows[method, "paper"][column] - rows[method, "validation"][column])
    table = result.table().splitlines()
    line = next(t for t in table if t.startswith("| eszsl (paper − validation) |"))
    assert line.split(" | ")[4] == f"{100 * gaps['eszsl']['H']:+.1f}"  # signed H difference
    assert any(t.startswith("| eszsl (validation) |") for t in table) and any(t.startswith("| eszsl (paper) |") for t in table)
    with (out / "gaps.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert {line["method"] for line in lines} == set(gaps)
    assert float(next(g for g in lines if g["method"] == "sae")["H"]) == pytest.approx(gaps["sae"]["H"])
    data = json.loads((out / "results.json").read_text())
    assert data["protocols"] == ["validation", "paper"] and len(data["gaps"]) == len(gaps)
    with (out / "results.csv").open() as fh:
        cells = list(csv.DictReader(fh))
    assert Counter(c["protocol"] for c in cells) == {"validation": len(gaps), "paper": len(gaps)}
    assert (out / "gaps_synthetic.png").read_bytes()[:4] == b"\x89PNG" and out / "gaps_synthetic.png" in written
    assert (out / "curves_synthetic_paper.png").exists() and (out / "training_synthetic_msdn_seed0_paper.png").exists()


def test_a_cached_protocol_is_not_recomputed_when_another_is_added(tmp_path, small_options, trainings):
    options = {"synthetic": small_options}
    run_benchmark(["synthetic"], ["sae"], protocol="validation", out_dir=tmp_path, dataset_options=options, progress=False)
    trainings.clear()
    result = run_benchmark(["synthetic"], ["sae"], protocol="validation,paper", out_dir=tmp_path,
                           dataset_options=options, progress=False)
    assert {call[1] for call in trainings} == {"synthetic"}  # the validation grid on the view did not rerun
    assert [c["protocol"] for c in result.cells] == ["validation", "paper"]


@pytest.mark.parametrize(("spec", "message"), [
    ("validation,validation", "names a protocol twice"),
    (",", "give at least one protocol"),
    ("validation,papr", "did you mean 'paper'"),
])
def test_bad_protocol_lists_are_refused(spec, message):
    with pytest.raises((ValueError, KeyError), match=message):
        _protocols(spec)


def test_a_protocol_needs_run_or_plan():
    with pytest.raises(ValueError, match="exactly one of run= or plan="):
        Protocol("mine", "caption")
