"""An example zslkit plugin: an attention block, a loss term, a model with its recipe, and a benchmark case.

Installing this package (``pip install -e plugins/zslkit-example-plugin``) makes
``zslkit list`` show ``example_temperature_attention``, ``example_attribute_mse`` and
``example_temperature_msdn`` (trained on ``synthetic`` with ``configs/example_temperature_msdn/synthetic.yaml``),
and ``zslkit bench --list`` the case ``msdn+temperature``.
"""

__version__ = "0.1.0"
