"""Without torchmetrics, ``ZSLAccuracy`` is a plain accumulator with the same methods and the same numbers."""

import os
import subprocess
import sys

from tests.conftest import REPO

CODE = """
import sys
sys.modules["torchmetrics"] = None  # as if not installed
import torch
from zslkit.metrics import ZSLAccuracy, evaluate
torch.manual_seed(0)
scores, labels = torch.randn(12, 6), torch.tensor([0, 1, 2, 3, 4, 5] * 2)
metric = ZSLAccuracy([0, 1, 2, 3], [4, 5], calibration="best")
assert type(metric).__mro__[1] is object, type(metric).__mro__
metric.update(scores[:5], labels[:5]); metric.update(scores[5:], labels[5:])
assert metric.compute() == evaluate(scores.numpy(), labels.numpy(), [0, 1, 2, 3], [4, 5], "best").metrics()
metric.reset()
try:
    metric.compute()
except RuntimeError as exc:
    assert str(exc) == "ZSLAccuracy.compute() called before any update()"
else:
    raise AssertionError("compute() before update() must raise")
"""


def test_zsl_accuracy_without_torchmetrics():
    subprocess.run([sys.executable, "-c", CODE], check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
