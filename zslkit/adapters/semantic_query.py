"""``semantic_query``: the label's attributes mixed into the CLS query of a block, in training (ZSLViT's injection).

At the place ``queries`` of block ``k``, in training (``context.labels`` given), with the label's
class attributes ``a = A[label]`` ``(B, I)`` (``context.class_attributes``, the model's rows):

* the semantic embedding ``s = sigmoid(W_3 relu(W_2 relu(W_1 a)))`` ``(B, D)`` (widths
  ``I -> D -> 2D -> D``), split by heads as ``(B, heads, D / heads)``;
* the CLS query (prefix token ``cls_index``) becomes ``q_cls <- (1 - mix) q_cls + mix s``
  (``mix = 0.1``), before the block's attention (and so before its ``1/sqrt(d)`` scale);
* the changed CLS query, heads concatenated ``(B, D)``, goes through
  ``relu(U_2 relu(U_1 q_cls))`` ``(B, I)``, a regression of the class attributes.

It records ``semantic`` (``s`` ``(B, D)``) and ``query_attributes`` (``(B, I)``) in
``extras[entry]`` for the loss terms ``global_alignment`` and ``query_regression``. Outside
training (no labels) it changes nothing and records nothing. Linear weights start from a
truncated normal (std 0.02), biases from 0, as the authors' ViT initialisation leaves them.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.registry import register

__all__ = ["SemanticQuery"]


def _init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)


@register("adapter", "semantic_query")
class SemanticQuery(nn.Module):
    """CLS query ``<- (1 - mix) q_cls + mix MLP(A[label])`` in training; records its two MLPs' outputs.

    ``forward(state, context) -> state`` at the place ``queries`` (``state.queries`` ``(B, heads, T, d)``).
    """

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int, mix: float = 0.1,
                 cls_index: int = 0) -> None:
        super().__init__()
        if not 0 <= mix <= 1:
            raise ValueError(f"semantic_query: mix must be a fraction in [0, 1], got {mix}")
        self.mix, self.cls_index = float(mix), int(cls_index)
        d, i = token_dim, num_attributes
        self.semantic = nn.Sequential(nn.Linear(i, d), nn.ReLU(), nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d),
                                      nn.Sigmoid())
        self.regression = nn.Sequential(nn.Linear(d, i), nn.ReLU(), nn.Linear(i, i), nn.ReLU())
        _init(self)

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        if state.queries is None:
            raise ValueError("semantic_query runs at the place 'queries' (it changes the block's CLS query)")
        if context.labels is None:  # not training: the queries as they are
            return state
        if context.class_attributes is None:
            raise ValueError("semantic_query needs the model's class attributes (AdapterContext.class_attributes)")
        queries = state.queries
        heads = queries.shape[1]
        semantic = self.semantic(context.class_attributes[context.labels].to(queries.dtype))  # (B, D)
        mixed = (1 - self.mix) * queries[:, :, self.cls_index] + self.mix * rearrange(
            semantic, "batch (head dim) -> batch head dim", head=heads)
        queries = torch.cat([queries[:, :, : self.cls_index], mixed[:, :, None], queries[:, :, self.cls_index + 1 :]], dim=2)
        regression = self.regression(rearrange(mixed, "batch head dim -> batch (head dim)"))
        return state.replace(queries=queries).record(context.entry, semantic=semantic, query_attributes=regression)

    def extra_repr(self) -> str:
        return f"mix={self.mix}, cls_index={self.cls_index}"
