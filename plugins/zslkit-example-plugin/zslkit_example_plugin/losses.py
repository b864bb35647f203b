"""Attribute mean squared error: each branch's attribute scores should match the label's class attributes.

Registered as ``example_attribute_mse`` (zslkit's own ``attribute_regression`` term is another one).
"""

from __future__ import annotations

import torch
from torch import nn


class AttributeMSE(nn.Module):
    """Mean over batch, attributes and branches of ``(psi_{b,i} - A_{y_b,i})^2``."""

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        target = classes.attributes[labels]  # (B, I)
        terms = [((scores - target) ** 2).mean() for scores in output.attribute_scores.values()]
        return torch.stack(terms).mean()
