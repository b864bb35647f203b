"""An example zslkit plugin: one attention block and one loss term.

Installing this package (``pip install -e plugins/zslkit-example-plugin``) makes
``zslkit list`` show ``example_temperature_attention`` and ``example_attribute_regression``.
"""

__version__ = "0.1.0"
