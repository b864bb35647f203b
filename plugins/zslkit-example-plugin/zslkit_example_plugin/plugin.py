"""The entry point zslkit loads (group ``zslkit``, name ``example``)."""

from __future__ import annotations

import zslkit
from zslkit_example_plugin.attention import TemperatureAttention
from zslkit_example_plugin.losses import AttributeRegression


@zslkit.hookimpl
def zslkit_register_components(registrar):
    registrar.register("attention", "example_temperature_attention", TemperatureAttention)
    registrar.register("loss", "attribute_regression", AttributeRegression)
