"""Leak-free U and H: the metric on a hand-made score matrix, the protocols, the harness's rows and table."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.scripted import DATA, ScriptedRunner
from zslkit.bench import protocols, run_benchmark
from zslkit.bench.leakage import (
    NO_CLEAN,
    WEB_SCALE,
    attach_leakage,
    for_runner,
    found_pretraining,
    leak_columns,
)
from zslkit.datasets import make_synthetic
from zslkit.datasets.store import create_store, open_store
from zslkit.leakage import pretraining_of
from zslkit.metrics.leak_free import leak_free_accuracy

# seen 0, 1; unseen 2, 3, 4 (3 is the class the pretraining saw); column 5 is in neither and must be masked
SCORES = np.array([
    [1.0, 0.2, 0.9, 0.0, 0.0, 9.0],  # label 0: 1.0 - 0.5 < 0.9 -> predicts 2 (wrong)
    [2.0, 0.0, 0.5, 0.0, 0.0, 9.0],  # label 0: 1.5 > 0.5 -> 0 (right)
    [0.0, 1.0, 0.0, 0.2, 0.0, 9.0],  # label 1: 0.5 -> 1 (right)
    [0.8, 0.0, 0.6, 0.0, 0.0, 9.0],  # label 2: 0.3 < 0.6 -> 2 (right)
    [1.5, 0.0, 0.6, 0.0, 0.0, 9.0],  # label 2: 1.0 > 0.6 -> 0 (wrong)
    [0.0, 0.0, 0.0, 1.0, 0.0, 9.0],  # label 3: right, but 3 is not clean: not counted
    [0.0, 0.0, 0.0, 0.4, 0.3, 9.0],  # label 4: the leaked class 3 still competes -> 3 (wrong)
    [0.0, 0.0, 0.0, 0.0, 1.0, 9.0],  # label 4: right
])
LABELS = np.array([0, 0, 1, 2, 2, 3, 4, 4])


def test_leak_free_accuracy_by_hand():
    result = leak_free_accuracy(SCORES, LABELS, [0, 1], [2, 3, 4], [2, 4], calibration=0.5)
    s = (1 / 2 + 1 / 1) / 2  # class 0: 1 of 2, class 1: 1 of 1
    u = (1 / 2 + 1 / 2) / 2  # class 2: 1 of 2, class 4: 1 of 2 (class 3 left out)
    assert result.seen == pytest.approx(s) and result.unseen == pytest.approx(u)
    assert result.harmonic == pytest.approx(2 * u * s / (u + s))  # 0.6
    # all unseen classes: U = (1/2 + 1 + 1/2) / 3, the number the leak-free one is compared with
    assert leak_free_accuracy(SCORES, LABELS, [0, 1], [2, 3, 4], [2, 3, 4], 0.5).unseen == pytest.approx(2 / 3)
    assert leak_free_accuracy(SCORES, LABELS, [0, 1], [2, 3, 4], [], 0.5) is None
    with pytest.raises(ValueError, match=r"clean classes \[1\] are not unseen classes"):
        leak_free_accuracy(SCORES, LABELS, [0, 1], [2, 3, 4], [1, 2], 0.5)


@pytest.fixture
def dataset():
    return make_synthetic(**DATA)


def test_validation_protocol_adds_leak_free_numbers_with_its_gamma(dataset):
    """Quality 5: the lower half of the sorted unseen classes is recognised. Clean = 6 of them + 2 others."""
    unseen = np.sort(dataset.unseen_classes)
    clean = [*unseen[:6], *unseen[-2:]]
    dataset.metadata["leakage"] = {"clean": [int(k) for k in clean]}
    out = protocols.validation_protocol.run(ScriptedRunner({"a1": [5]}, {"a1": [5]}), dataset, 0, False)
    u, s = 6 / 8, 22 / 44
    assert out["metrics"]["U"] == pytest.approx(0.5) and out["metrics"]["S"] == pytest.approx(s)
    assert out["leak_free"] == pytest.approx({"U": u, "H": 2 * u * s / (u + s)})
    del dataset.metadata["leakage"]
    assert "leak_free" not in protocols.validation_protocol.run(ScriptedRunner({"a1": [5]}, {"a1": [5]}), dataset, 0, False)


def test_attach_leakage_matches_the_unseen_class_names(dataset):
    unseen = sorted(int(k) for k in dataset.unseen_classes)
    for k, name in zip(unseen, ["087.Mallard", "blue+whale", "tundra", "sandbox"]):
        dataset.class_names[k] = name
    attach_leakage("mine", dataset, pretraining_of("in21k"))
    record = dataset.metadata["leakage"]
    assert record["overlapping"] == ["087.Mallard", "blue+whale", "tundra"]  # sandbox: only another sense
    assert record["clean"] == unseen[3:] and record["label_sets"] == ["in21k"] and record["unseen"] == len(unseen)
    attach_leakage("mine", dataset, pretraining_of("openai"))
    assert dataset.metadata["leakage"]["web_scale"] and dataset.metadata["leakage"]["clean"] is None


def test_pretraining_found_in_the_store_and_contradictions_refused(tmp_path, dataset):
    writer = create_store(tmp_path / "store", (2, 1, 1, 1), dtype="float32",
                          metadata={"backbone": {"name": "timm", "model": "vit_base_patch16_224.augreg2_in21k_ft_in1k"}})
    writer.write(0, np.zeros((2, 1, 1, 1), np.float32))
    writer.finish()
    dataset.features = open_store(tmp_path / "store")
    assert found_pretraining(dataset).label_sets == ("in1k", "in21k")
    with pytest.raises(ValueError, match="--pretraining in1k contradicts mine's backbone"):
        attach_leakage("mine", dataset, pretraining_of("in1k"))
    dataset.features = None
    assert found_pretraining(dataset, {"model_name": "resnet10t.a1_in1k", "weights": "w.pth"}).label_sets == ("in1k",)
    assert found_pretraining(dataset, {"model_name": "resnet10t.a1_in1k", "random_init": True}) is None
    assert found_pretraining(dataset, {"model_name": "resnet10t", "weights": "w.pth"}) is None  # the file says nothing


def test_leak_columns_of_rows():
    cells = [{"metrics": {"H": h}, "leak_free": {"U": u, "H": hl}, "leakage": {"web_scale": False, "clean": [3]}}
             for h, u, hl in ((0.5, 0.4, 0.3), (0.7, 0.2, 0.4))]
    out = leak_columns(cells)
    assert out["U_leak_free"] == pytest.approx(0.3) and out["H_leak_free"] == pytest.approx(0.35)
    assert out["H_leak_gap"] == pytest.approx(0.25) and out["H_leak_gap_std"] == pytest.approx(np.std([0.2, 0.3], ddof=1))
    none_clean = [{**c, "leakage": {"web_scale": False, "clean": []}} for c in cells]
    assert leak_columns(none_clean) == {"U_leak_free": NO_CLEAN, "H_leak_free": NO_CLEAN}
    web = [{**c, "leakage": {"web_scale": True, "clean": None}} for c in cells]
    assert leak_columns(web) == {"U_leak_free": WEB_SCALE, "H_leak_free": WEB_SCALE}
    assert leak_columns([{"metrics": {}}]) == {}


def test_bench_rows_and_table(small_options):
    """Synthetic class names are in no label set: every unseen class is clean, so leak-free = all."""
    options = {"synthetic": small_options}
    result = run_benchmark(["synthetic"], ["eszsl"], seeds=1, dataset_options=options, progress=False, pretraining="in21k")
    (row,) = result.rows()
    assert row["U_leak_free"] == row["U"] and row["H_leak_free"] == row["H"] and row["H_leak_gap"] == 0
    assert "| method | T1 | U | S | H | AUSUC | U_leak_free | H_leak_free | H_leak_gap |" in result.table()
    assert "synthetic: in21k (in21k, " in result.table()
    web = run_benchmark(["synthetic"], ["eszsl"], seeds=1, dataset_options=options, progress=False, pretraining="clip_laion2b")
    assert f"| {WEB_SCALE} | {WEB_SCALE} | - |" in web.table()
    plain = run_benchmark(["synthetic"], ["eszsl"], seeds=1, dataset_options=options, progress=False)
    assert "U_leak_free" not in plain.table() and "leakage" not in plain.cells[0]


def test_a_runner_with_its_own_backbone_is_checked_against_its_pretraining(dataset):
    """A CLIP-like runner names its pretraining: web-scale rows say unknown; a known one gets its own clean set."""
    unseen = np.sort(dataset.unseen_classes)
    dataset.class_names[int(unseen[0])] = "mallard"  # in ImageNet-21k, not in ImageNet-1k
    attach_leakage("mine", dataset, pretraining_of("in1k"))
    assert dataset.metadata["leakage"]["clean"] == [int(k) for k in unseen]

    class Own(ScriptedRunner):
        pretraining = "in21k"

    runner = Own({"a1": [5]}, {"a1": [5]})
    view = for_runner("mine", dataset, runner)
    assert view.metadata["leakage"]["clean"] == [int(k) for k in unseen[1:]] and view.labels is dataset.labels
    assert dataset.metadata["leakage"]["label_sets"] == ["in1k"]  # the shared dataset is untouched
    out = protocols.validation_protocol.run(runner, view, 0, False)
    u = 7 / 15  # classes 2..8 of the sorted 16 are recognised (quality 5: the first 8, less the leaked first)
    assert out["leak_free"]["U"] == pytest.approx(u)
    runner.pretraining = "openai"
    web = for_runner("mine", dataset, runner).metadata["leakage"]
    assert web["web_scale"] and web["clean"] is None
    assert for_runner("mine", dataset, ScriptedRunner({"a1": [5]}, {"a1": [5]})) is dataset
