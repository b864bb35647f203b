"""Benchmark cases: the defaults, names, and what plugins add through ``zslkit_benchmark_cases``."""

import warnings
from importlib import metadata

import pytest

import zslkit
from zslkit.bench import BenchmarkCase, Protocol, available_cases, get_protocol, select_cases
from zslkit.bench.protocols import PROTOCOLS
from zslkit.plugins import PluginWarning, get_plugin_manager

BASELINES = ["ale", "devise", "eszsl", "latem", "sae", "sje"]


@pytest.fixture
def in_process_plugin():
    """Register plugin objects with pluggy for one test, then remove them again."""
    pm, added = get_plugin_manager(), []
    zslkit.list_components()  # load the installed plugins first

    def add(plugin, name):
        pm.register(plugin, name=name)
        added.append(name)

    yield add
    for name in added:
        pm.unregister(name=name)


class GoodPlugin:
    protocol = Protocol("test-once", "tests only", lambda runner, dataset, seed, progress: {})

    @zslkit.hookimpl
    def zslkit_benchmark_cases(self):
        return [BenchmarkCase("ale-wide-margin", component="ale", options={"margin": 3.0}, datasets=("synthetic",)),
                self.protocol]


class BrokenPlugin:
    @zslkit.hookimpl
    def zslkit_benchmark_cases(self):
        raise RuntimeError("boom")


class ConfusedPlugin:
    @zslkit.hookimpl
    def zslkit_benchmark_cases(self):
        return ["not a case"]


def test_defaults_are_the_builtin_baselines_plus_msdn_and_dazle_when_registered():
    names = [c.name for c in select_cases(None, "synthetic")]
    models = [m for m in ("msdn", "dazle") if m in zslkit.list_components("model")]
    assert sorted(names) == sorted(BASELINES + models)
    assert all(c.kind == "method" for c in select_cases(BASELINES, "synthetic"))


def test_unknown_case_suggests_the_closest():
    with pytest.raises(KeyError, match="did you mean 'latem'"):
        select_cases(["latemm"], "synthetic")


def test_plugin_cases_and_protocols_join_and_broken_plugins_are_skipped(in_process_plugin):
    in_process_plugin(GoodPlugin(), "good-bench-plugin")
    in_process_plugin(BrokenPlugin(), "broken-bench-plugin")
    in_process_plugin(ConfusedPlugin(), "confused-bench-plugin")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cases = available_cases()
            chosen = select_cases(["ale-wide-margin"], "synthetic")
        messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
        assert any("broken-bench-plugin" in m and "boom" in m for m in messages)
        assert any("confused-bench-plugin" in m and "expected BenchmarkCase" in m for m in messages)
        case = cases["ale-wide-margin"]
        assert case.source == "good-bench-plugin" and not case.default
        assert case.runner().fit  # a method runner
        assert get_protocol("test-once") is GoodPlugin.protocol
        assert [c.name for c in chosen] == ["ale-wide-margin"]
    finally:
        PROTOCOLS.pop("test-once", None)


def test_example_plugin_adds_an_msdn_branch_case():
    try:
        metadata.distribution("zslkit-example-plugin")
    except metadata.PackageNotFoundError:
        pytest.skip("zslkit-example-plugin is not installed")
    case = available_cases()["msdn+temperature"]
    assert (case.kind, case.component, case.source) == ("model", "msdn", "example")
    assert case.options["branches"]["v2a"]["attention"] == "example_temperature_attention"


@pytest.mark.parametrize(("field", "value", "message"), [("name", "", "non-empty"), ("kind", "network", "kind")])
def test_bad_cases_are_refused_with_the_field_named(field, value, message):
    args = {"name": "x", "component": "ale", field: value}
    with pytest.raises(ValueError, match=message):
        BenchmarkCase(**args)


def test_settings_capture_everything_that_changes_the_numbers():
    a = BenchmarkCase("x", "ale", options={"margin": 2.0})
    b = BenchmarkCase("x", "ale", options={"margin": 3.0})
    assert a.settings() != b.settings()
    assert a.settings() == BenchmarkCase("x", "ale", options={"margin": 2.0}, default=True).settings()
