"""An example zslkit plugin: an attention block, a loss term, and a model with its recipe.

Installing this package (``pip install -e plugins/zslkit-example-plugin``) makes
``zslkit list`` show ``example_temperature_attention``, ``attribute_regression`` and
``example_temperature_msdn`` (trained on ``synthetic`` with ``configs/example_temperature_msdn/synthetic.yaml``).
"""

__version__ = "0.1.0"
