"""Loss terms: ``factory(**options)``; ``forward(output, labels, classes)`` returns a scalar.

Importing this package registers the built-in terms.
"""

from zslkit.losses.attribute_ce import AttributeCrossEntropy
from zslkit.losses.base import PerBranchLoss, select_branches
from zslkit.losses.self_calibration import SelfCalibration
from zslkit.losses.semantic_distillation import SemanticDistillation, jensen_shannon, weighted_difference

__all__ = [
    "AttributeCrossEntropy",
    "PerBranchLoss",
    "SelfCalibration",
    "SemanticDistillation",
    "jensen_shannon",
    "select_branches",
    "weighted_difference",
]
