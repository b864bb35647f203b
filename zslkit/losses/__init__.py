"""Loss terms: ``factory(**options)``; ``forward(output, labels, classes)`` returns a scalar.

Importing this package registers the built-in terms.
"""

from zslkit.losses.attention_regression import AttentionRegression
from zslkit.losses.attribute_ce import AttributeCrossEntropy
from zslkit.losses.attribute_decorrelation import AttributeDecorrelation, group_norms
from zslkit.losses.attribute_regression import AttributeRegression
from zslkit.losses.base import PerBranchLoss, select_branches
from zslkit.losses.compactness import Compactness, peak_distances
from zslkit.losses.consistency import AttributeConsistency, ClassConsistency, Consistency
from zslkit.losses.debias import Debias, debias_loss
from zslkit.losses.global_alignment import GlobalAlignment
from zslkit.losses.kl_distillation import KLDistillation, kl_distillation
from zslkit.losses.patch_selection import PatchSelection
from zslkit.losses.query_regression import QueryRegression
from zslkit.losses.self_calibration import SelfCalibration
from zslkit.losses.semantic_distillation import SemanticDistillation, jensen_shannon, weighted_difference

__all__ = [
    "AttentionRegression",
    "AttributeConsistency",
    "AttributeCrossEntropy",
    "AttributeDecorrelation",
    "AttributeRegression",
    "ClassConsistency",
    "Compactness",
    "Consistency",
    "Debias",
    "GlobalAlignment",
    "KLDistillation",
    "PatchSelection",
    "PerBranchLoss",
    "QueryRegression",
    "SelfCalibration",
    "SemanticDistillation",
    "group_norms",
    "debias_loss",
    "jensen_shannon",
    "kl_distillation",
    "peak_distances",
    "select_branches",
    "weighted_difference",
]
