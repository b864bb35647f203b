"""The harness end to end on a small synthetic dataset: aggregation over seeds, files, cache, tables."""

import csv
import json

import numpy as np
import pytest

from zslkit.bench import harness, protocols
from zslkit.bench.harness import BenchmarkResult, run_benchmark, write_outputs
from zslkit.bench.protocols import Protocol
from zslkit.bench.table import format_markdown


def counting_protocol(monkeypatch, fail_at=None):
    """Wrap the validation protocol to count the cells it computes (and optionally die at one)."""
    real = protocols.PROTOCOLS["validation"]
    calls = []

    def run(runner, dataset, seed, progress):
        calls.append(seed)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return real.run(runner, dataset, seed, progress)

    monkeypatch.setitem(protocols.PROTOCOLS, "validation", Protocol("validation", real.caption, run))
    return calls


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_options):
    out = tmp_path_factory.mktemp("bench")
    result = run_benchmark(["synthetic"], ["sae", "ale"], seeds=2, out_dir=out,
                           dataset_options={"synthetic": small_options}, progress=False)
    return result, out, write_outputs(result, out)


def test_rows_are_mean_and_std_over_seeds(finished):
    result, _, _ = finished
    assert len(result.cells) == 4
    for row in result.rows():
        cells = [c for c in result.cells if c["method"] == row["method"]]
        assert row["seeds"] == [0, 1]
        for column in ("T1", "U", "S", "H", "AUSUC"):
            values = [c["metrics"][column] for c in cells]
            assert row[column] == pytest.approx(np.mean(values))
            assert row[f"{column}_std"] == pytest.approx(np.std(values, ddof=1))
    sae = next(r for r in result.rows() if r["method"] == "sae")
    assert sae["H_std"] == 0.0  # closed form: nothing depends on the seed


def test_files_record_every_run_with_settings_versions_device_and_time(finished):
    result, out, written = finished
    with (out / "results.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert [(r["method"], r["seed"]) for r in lines] == [("sae", "0"), ("sae", "1"), ("ale", "0"), ("ale", "1")]
    for line in lines:
        assert float(line["wall_s"]) > 0 and line["device"] == "cpu"
        assert json.loads(line["versions"])["numpy"] == np.__version__
        assert json.loads(line["settings"])["seed"] == int(line["seed"])
    data = json.loads((out / "results.json").read_text())
    assert data["protocol"] == "validation" and len(data["cells"]) == 4
    assert data["cells"][0]["environment"]["packages"]["torch"]
    assert data["cells"][2]["selected"]["params"]["lr"] in [0.003, 0.01, 0.03, 0.1]
    table = (out / "table.md").read_text()
    assert "±" in table and "Protocol `validation`" in table
    pngs = [p for p in written if p.suffix == ".png"]
    assert [p.name for p in pngs] == ["curves_synthetic.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_restarted_run_reuses_finished_cells(tmp_path, small_options, monkeypatch):
    options = {"synthetic": small_options}
    calls = counting_protocol(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(["synthetic"], ["sae", "eszsl"], seeds=2, out_dir=tmp_path, dataset_options=options, progress=False)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2  # two cells finished before the interruption
    calls = counting_protocol(monkeypatch)
    first = run_benchmark(["synthetic"], ["sae", "eszsl"], seeds=2, out_dir=tmp_path, dataset_options=options, progress=False)
    assert calls == [0, 1]  # only eszsl's two seeds were computed
    calls = counting_protocol(monkeypatch)
    again = run_benchmark(["synthetic"], ["sae", "eszsl"], seeds=2, out_dir=tmp_path, dataset_options=options, progress=False)
    assert calls == [] and again.rows() == first.rows()
    changed = {"synthetic": {**small_options, "noise": 0.3}}
    run_benchmark(["synthetic"], ["sae"], seeds=1, out_dir=tmp_path, dataset_options=changed, progress=False)
    assert calls == [0]  # other settings, other cell


def test_a_changed_recipe_recomputes_the_cells_trained_with_it(tmp_path, small_options, monkeypatch):
    """The cache key holds the recipe's config: a recipe file edited between runs is not answered from the cache."""
    import zslkit.training
    from zslkit.training import recipes

    options = {"synthetic": small_options}
    calls = counting_protocol(monkeypatch)
    first = run_benchmark(["synthetic"], ["msdn"], out_dir=tmp_path, dataset_options=options, progress=False)
    assert calls == [0] and first.cells[0]["settings"]["recipe"]["epochs"] == recipes.recipe_for("msdn", "synthetic").config.epochs
    calls = counting_protocol(monkeypatch)
    run_benchmark(["synthetic"], ["msdn"], out_dir=tmp_path, dataset_options=options, progress=False)
    assert calls == []  # same recipe: cached
    original = zslkit.training.choose_recipe

    def edited(model, dataset, config=None):
        model, recipe = original(model, dataset, config)
        return model, recipe.with_config(zslkit.training.load_config(recipe.config, epochs=recipe.config.epochs + 1))

    monkeypatch.setattr(zslkit.training, "choose_recipe", edited)
    calls = counting_protocol(monkeypatch)
    again = run_benchmark(["synthetic"], ["msdn"], out_dir=tmp_path, dataset_options=options, progress=False)
    assert calls == [0] and again.cells[0]["settings"]["recipe"]["epochs"] == first.cells[0]["settings"]["recipe"]["epochs"] + 1


def fake_cell(dataset, method, seed, h):
    metrics = {"T1": h, "U": h, "S": h, "H": h, "AUSUC": h / 2}
    return {"dataset": dataset, "method": method, "kind": "method", "seed": seed, "metrics": metrics,
            "gamma": 0.0, "wall_s": 1.0, "curve": None}


def test_published_rows_sit_under_measured_ones_and_are_labelled():
    cells = [fake_cell(d, m, 0, 0.5) for d in ("cub", "sun") for m in ("ale", "mine")]
    result = BenchmarkResult(protocols.PROTOCOLS["paper"], ["cub", "sun"], cells)
    lines = result.table().splitlines()
    header = lines[2].split(" | ")
    assert header[:2] == ["| method", "cub T1"] and "sun AUSUC |" in header[-1]
    published = next(line for line in lines if line.startswith("| ale (published)"))
    cells_of = published.strip("| ").split(" | ")
    assert cells_of[1:6] == ["54.9", "23.7", "62.8", "34.4", "-"]  # GBU: CUB T1, U, S, H; no AUSUC
    assert cells_of[6:10] == ["58.1", "21.8", "33.1", "26.3"]  # SUN
    order = [line.split(" | ")[0] for line in lines[4:]]
    assert order == ["| ale", "| ale (published)", "| mine"]
    assert "Xian et al., TPAMI 2018" in lines[0]
    assert "published" not in result.table(with_published=False)


def test_deep_model_cells_get_a_training_curve_plot(tmp_path):
    cell = fake_cell("synthetic", "msdn", 0, 0.6)
    cell.update(kind="model", protocol="validation", curve={"unseen": [0.0, 0.6], "seen": [0.6, 0.0]},
                environment={"device": "cpu", "python": "3", "packages": {}},
                train_history=[{"epoch": e, "loss": 1.0 / e, "loss_ce": 0.5 / e} for e in (1, 2, 3)],
                epochs=[{"epoch": e, "val_T1": 0.1 * e, "val_H": 0.05 * e} for e in (1, 2, 3)])
    written = write_outputs(BenchmarkResult(protocols.PROTOCOLS["validation"], ["synthetic"], [cell]), tmp_path)
    plot = tmp_path / "training_synthetic_msdn_seed0.png"
    assert plot in written and plot.read_bytes()[:4] == b"\x89PNG"


def test_markdown_blocks_leave_missing_cells_blank():
    rows = [{"method": "a", "dataset": "x", "T1": 0.5, "T1_std": 0.01}, {"method": "b", "dataset": "y", "T1": 0.25}]
    text = format_markdown(rows, columns=("T1",))
    assert text.splitlines() == ["| method | x T1 | y T1 |", "|---|---:|---:|", "| a | 50.0 ± 1.0 | - |", "| b | - | 25.0 |"]


def test_unknown_dataset_fails_before_any_work(monkeypatch):
    calls = counting_protocol(monkeypatch)
    with pytest.raises(KeyError, match="synthetic"):
        run_benchmark(["synthetc"], ["sae"], progress=False)
    assert calls == [] and harness.HARNESS_VERSION >= 1


def test_grids_expand_to_every_combination_and_refuse_scalars():
    from zslkit.bench.runner import expand_grid

    assert expand_grid(None) == [{}] and expand_grid({}) == [{}]
    assert expand_grid({"b": [1, 2], "a": ["x"]}) == [{"a": "x", "b": 1}, {"a": "x", "b": 2}]
    assert expand_grid([{"a": [1]}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]
    with pytest.raises(ValueError, match=r"param_grid\['lr'\] must be a list"):
        expand_grid({"lr": 0.1})
