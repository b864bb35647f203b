"""The entry point zslkit loads (group ``zslkit``, name ``example``)."""

from __future__ import annotations

import zslkit
from zslkit_example_plugin.attention import TemperatureAttention
from zslkit_example_plugin.losses import AttributeMSE
from zslkit_example_plugin.model import TemperatureMSDN


@zslkit.hookimpl
def zslkit_register_components(registrar):
    registrar.register("attention", "example_temperature_attention", TemperatureAttention)
    registrar.register("loss", "example_attribute_mse", AttributeMSE)
    # its recipes: zslkit_example_plugin/configs/example_temperature_msdn/<dataset>.yaml (package data)
    registrar.register("model", "example_temperature_msdn", TemperatureMSDN)


@zslkit.hookimpl
def zslkit_benchmark_cases():
    """One benchmark row: MSDN with this plugin's attention block as its visual->attribute branch.

    Run it with ``zslkit bench --model msdn,msdn+temperature``.
    """
    from zslkit.bench import BenchmarkCase  # imported when the harness asks, not when zslkit loads plugins

    branches = {
        "a2v": {"attention": "attribute_to_visual", "weight": 0.9},
        "v2a": {"attention": "example_temperature_attention", "weight": 0.1, "temperature": 0.5},
    }
    return [BenchmarkCase("msdn+temperature", component="msdn", kind="model", options={"branches": branches})]
