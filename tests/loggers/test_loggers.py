"""Metric loggers (kind ``logger``): real runs written by ``zslkit train/bench --logger ...``, read back with each
tool's own reader (TensorBoard's EventAccumulator, MLflow's client on the local store, the offline wandb run's
records through wandb's protobuf classes) and compared with the CSV history the trainer writes."""

from __future__ import annotations

import csv
import json
import struct
import sys

import numpy as np
import pytest

from tests.bench.conftest import SMALL
from zslkit.cli import main

OPTIONS = [arg for key, value in SMALL.items() for arg in ("--dataset-option", f"{key}={value}")]
RUN = "msdn-synthetic-trainval-seed0"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing reaches a network: wandb offline and silent, MLflow on the run's own local store."""
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
                       "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off", "WANDB_DISABLE_STATS": "true"}.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def tensorboard_scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}, events


def wandb_records(folder):
    """The offline run's records (``run-<id>.wandb``: W&B's LevelDB-log file of ``wandb_internal.Record``)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, records, pending, pos = 32768, [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(records):
    rows = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            rows[items["_step"]] = items
    return rows


def test_train_logs_config_epochs_and_summary_to_every_logger(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "msdn", "--epochs", "2", "--no-progress", "--out", str(out), *OPTIONS,
                 "--logger", "csv,tensorboard,mlflow,wandb"]) == 0
    history = read_csv(out / "history.csv")  # the trainer's own record, beside the checkpoints
    results = json.loads((out / "results.json").read_text())[0]
    losses = [float(h["loss"]) for h in history]
    assert [int(h["epoch"]) for h in history] == [1, 2]

    # csv: the same history, and the config and summary
    assert read_csv(out / "csv" / RUN / "history.csv") == history
    assert json.loads((out / "csv" / RUN / "config.json").read_text())["lr"] == float(history[0]["lr"])
    assert json.loads((out / "csv" / RUN / "summary.json").read_text())["H"] == results["H"]

    # tensorboard: its event reader
    scalars, events = tensorboard_scalars(out / "tensorboard" / RUN)
    assert scalars["loss"] == [(e, pytest.approx(np.float32(v), rel=1e-7)) for e, v in zip((1, 2), losses)]
    for key in ("loss_attribute_ce", "lr"):
        np.testing.assert_allclose([v for _, v in scalars[key]], [float(h[key]) for h in history], rtol=1e-6)
    assert scalars["summary/H"] == [(0, pytest.approx(results["H"], rel=1e-6))]
    assert "results" in events.Tags()["tensors"] or "results/text_summary" in events.Tags()["tensors"]

    # mlflow: its client on the local store
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("zslkit").experiment_id])
    assert run.info.run_name == RUN and run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == list(zip((1, 2), losses))
    assert float(run.data.params["lr"]) == float(history[0]["lr"]) and run.data.params["model"] == "msdn"
    assert run.data.metrics["summary.T1"] == results["T1"]

    # wandb: the offline run's records
    records = wandb_records(out)
    rows = wandb_history(records)
    assert sorted(rows) == [1, 2]  # the table joins the last epoch's row
    assert rows[2]["results/_type"] == "table-file"
    (files,) = out.glob("wandb/offline-run-*/files")
    table = json.loads((files / rows[2]["results/path"]).read_text())
    assert table["data"][0][table["columns"].index("H")] == results["H"]
    assert [rows[e]["loss"] for e in (1, 2)] == losses
    config = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for i in r.config.update}
    assert config["lr"] == float(history[0]["lr"]) and config["model"] == "msdn"
    summary = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update}
    assert summary["H"] == results["H"]


def test_bench_logs_one_run_per_cell_with_its_protocol_and_the_table(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--model", "eszsl,dazle", "--no-progress", "--out", str(out), *OPTIONS,
                 "--logger", "csv,tensorboard"]) == 0
    cells = {c["method"]: c for c in json.loads((out / "results.json").read_text())["cells"]}
    dazle = cells["dazle"]
    folder = out / "csv" / "synthetic" / "dazle" / "validation" / "seed0"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["protocol"] == "validation" and summary["gamma"] == dazle["gamma"]
    assert summary["epoch"] == dazle["selected"]["epoch"] and summary["H"] == dazle["metrics"]["H"]
    assert json.loads((folder / "config.json").read_text())["recipe"]["lr"] == dazle["settings"]["recipe"]["lr"]
    history = read_csv(folder / "history.csv")
    assert [float(h["loss"]) for h in history if h["loss"]] == [h["loss"] for h in dazle["train_history"]]
    assert [float(h["val_H"]) for h in history] == [e["val_H"] for e in dazle["epochs"]]
    assert (folder / "training.png").read_bytes() == (out / "training_synthetic_dazle_seed0.png").read_bytes()

    scalars, _ = tensorboard_scalars(out / "tensorboard" / "synthetic" / "eszsl" / "validation" / "seed0")
    assert scalars["summary/H"] == [(0, pytest.approx(cells["eszsl"]["metrics"]["H"], rel=1e-6))]
    table = (out / "csv" / "table" / "results.md").read_text()
    assert table.strip() == (out / "table.md").read_text().strip()
    assert (out / "csv" / "table" / "curves_synthetic.png").is_file()


def test_mlflow_logs_to_the_tracking_uri_given(tmp_path):
    from mlflow import MlflowClient

    import zslkit

    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'store.db'}"
    logger = zslkit.create("logger", "mlflow", out_dir=tmp_path / "out", run="r", group="g", tracking_uri=uri,
                           experiment="mine")
    logger.log_metrics({"loss": 0.25, "epoch": 1, "note": "text"}, 1)
    logger.close()
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mine").experiment_id])
    assert run.data.metrics == {"loss": 0.25} and run.data.tags["zslkit.group"] == "g"
    assert not (tmp_path / "out" / "mlflow.db").exists()


@pytest.mark.parametrize("name, module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_library_is_one_line_naming_the_extra(name, module, tmp_path, monkeypatch):
    import zslkit

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ImportError) as info:
        zslkit.create("logger", name, out_dir=tmp_path, run="r", group=None)
    assert str(info.value) == (f"logger {name!r} needs the {module} package, which is not installed: "
                               f"pip install 'zslkit[{name}]'")


def test_loggers_are_refused_in_a_sentence(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--logger", "tensorboard"]) == 2
    assert "write under --out, which was not given; add --out DIR" in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--logger", "tensorbord", "--out", str(tmp_path)]) == 2
    assert "no logger named 'tensorbord'; did you mean 'tensorboard'?" in capsys.readouterr().err
    from zslkit.training import TrainConfig

    with pytest.raises(ValueError, match="TrainConfig.loggers: no logger named 'mlfow'; did you mean 'mlflow'"):
        TrainConfig(loggers=["mlfow"])


def test_a_recipes_loggers_are_used_by_train(tmp_path):
    import zslkit
    from zslkit.training import train

    dataset = zslkit.load_dataset("synthetic", **SMALL)
    result = train(dataset, "msdn", {"epochs": 2, "loggers": ["csv"]}, out_dir=tmp_path, progress=False)
    logged = read_csv(tmp_path / "csv" / "msdn-synthetic-trainval-seed0" / "history.csv")
    assert logged == read_csv(tmp_path / "history.csv") and len(result.history) == 2
    assert json.loads((tmp_path / "csv" / "msdn-synthetic-trainval-seed0" / "config.json").read_text())["loggers"] == ["csv"]


class MemoryLogger:
    """A plugin's logger: keeps every call."""

    runs: list = []

    def __init__(self, *, out_dir, run, group=None):
        self.calls = []
        MemoryLogger.runs.append((run, self.calls))

    def log_config(self, config):
        self.calls.append(("config", dict(config)))

    def log_metrics(self, metrics, step):
        self.calls.append(("metrics", step, dict(metrics)))

    def log_summary(self, summary):
        self.calls.append(("summary", dict(summary)))

    def log_table(self, name, rows, markdown):
        self.calls.append(("table", name))

    def log_image(self, name, path):
        self.calls.append(("image", name))

    def close(self):
        self.calls.append(("close",))


def test_a_plugin_adds_a_logger_through_the_hook(tmp_path):
    import zslkit
    from zslkit import plugins, registry
    from zslkit.contracts import ContractError

    class Plugin:
        @zslkit.hookimpl
        def zslkit_register_components(self, registrar):
            registrar.register("logger", "memory", MemoryLogger)

    info = plugins.register_plugin(Plugin(), name="memory-logger")
    try:
        assert info.error is None and ("logger", "memory") in info.components
        MemoryLogger.runs.clear()
        assert main(["train", "--model", "msdn", "--epochs", "2", "--no-progress", "--out", str(tmp_path), *OPTIONS,
                     "--logger", "memory"]) == 0
        ((run, calls),) = MemoryLogger.runs
        history = read_csv(tmp_path / "history.csv")
        assert run == RUN and [c[0] for c in calls] == ["config", "metrics", "metrics", "summary", "table", "close"]
        assert [(c[1], c[2]["loss"]) for c in calls[1:3]] == [(int(h["epoch"]), float(h["loss"])) for h in history]
    finally:
        registry.unregister("logger", "memory")
        plugins.get_plugin_manager().unregister(name="memory-logger")
        plugins._plugins.pop("memory-logger")

    def no_run(*, out_dir):
        return None

    with pytest.raises(ContractError, match="logger 'broken'.*must accept keyword options out_dir, run, group; missing run, group"):
        registry.register_component("logger", "broken", no_run)
