"""Attention rollout (Abnar and Zuidema, ACL 2020) of a timm ViT, without holding every layer's attention.

For the attention weights ``a_l`` ``(B, heads, T, T)`` of blocks ``l = 1..L`` (softmax over keys)::

    A_l = mean_h a_l + I,    A_l <- A_l / (A_l 1)        (rows normalised to sum 1)
    R   = A_L A_{L-1} ... A_1                            (B, T, T)

:func:`explicit_rollout` takes the list of all ``a_l`` (what a forward that returns every block's
weights holds: ``L x (B, heads, T, T)``). :class:`AttentionRollout` computes the same ``R`` during
an ordinary forward of timm's blocks: a forward hook on every block's ``attn.qkv`` reads the
queries and keys that the block computes anyway, forms that block's head-averaged weights under
``torch.no_grad`` and multiplies them into one running ``(B, T, T)`` product. The blocks keep
timm's fused attention (``scaled_dot_product_attention``) for their output, nothing is kept for
backward, and no gradient reaches ``R`` (it is a target, not a prediction).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

__all__ = ["AttentionRollout", "explicit_rollout", "rollout_factor"]


def rollout_factor(weights: torch.Tensor) -> torch.Tensor:
    """``(B, heads, T, T)`` attention weights -> ``A = mean_h a + I``, rows normalised ``(B, T, T)``."""
    mean = weights.mean(dim=1)
    eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
    factor = mean + eye
    return factor / factor.sum(dim=-1, keepdim=True)


def explicit_rollout(weights: list[torch.Tensor]) -> torch.Tensor:
    """``R = A_L ... A_1`` ``(B, T, T)`` from every block's weights ``(B, heads, T, T)``, first block first."""
    product = None
    for layer in weights:
        factor = rollout_factor(layer)
        product = factor if product is None else torch.bmm(factor, product)
    return product


class AttentionRollout:
    """Context manager: the rollout ``R`` of the timm blocks that run inside it (see the module docstring).

    >>> with AttentionRollout(vit.blocks) as rollout:
    ...     tokens = vit.blocks(tokens)        # timm's own blocks, fused attention, with gradients
    >>> rollout.product                         # (B, T, T), no gradient

    Args:
        blocks: timm ``Block`` modules whose ``attn`` is timm's ``Attention`` (a ``qkv`` linear,
            ``num_heads``, ``head_dim``, ``scale``, ``q_norm``, ``k_norm``); each must run once per forward.
    """

    def __init__(self, blocks: nn.ModuleList | list[nn.Module]) -> None:
        self.attentions = [block.attn for block in blocks]
        for index, attn in enumerate(self.attentions):
            missing = [p for p in ("qkv", "num_heads", "head_dim", "scale", "q_norm", "k_norm") if not hasattr(attn, p)]
            if missing:
                raise ValueError(f"AttentionRollout: block {index}'s attention {type(attn).__name__} is not timm's "
                                 f"Attention (missing {missing}); the rollout reads its queries and keys")
        self.product: torch.Tensor | None = None
        self._handles: list = []

    def _hook(self, attn: nn.Module, inputs, qkv: torch.Tensor) -> None:
        with torch.no_grad():
            q, k, _ = rearrange(qkv.detach(), "b t (three heads d) -> three b heads t d", three=3, heads=attn.num_heads)
            q, k = attn.q_norm(q), attn.k_norm(k)
            weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            factor = rollout_factor(weights)
            self.product = factor if self.product is None else torch.bmm(factor, self.product)

    def __enter__(self) -> AttentionRollout:
        self.product = None
        self._handles = [attn.qkv.register_forward_hook(lambda m, i, o, attn=attn: self._hook(attn, i, o))
                         for attn in self.attentions]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
