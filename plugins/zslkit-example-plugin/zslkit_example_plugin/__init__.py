"""An example zslkit plugin: one attention block, one loss term and one benchmark case.

Installing this package (``pip install -e plugins/zslkit-example-plugin``) makes
``zslkit list`` show ``example_temperature_attention`` and ``example_attribute_mse``,
and ``zslkit bench --list`` the case ``msdn+temperature``.
"""

__version__ = "0.1.0"
