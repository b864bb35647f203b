"""One timm ViT block run with adapters inside it: its attention computed here, from the block's own weights.

Only a block where an adapter asks for the queries or the attention weights runs here; every
other block runs as timm's module (fused attention). The steps are those of timm's
``Block.forward`` and ``Attention.forward``, with the adapters between them::

    h = norm1(x);  q, k, v = qkv(h) split by heads;  q, k = q_norm(q), k_norm(k)
    q = adapters at 'queries' (state.queries = q)
    a = softmax(q * scale @ k^T)                         (B, heads, T, T), when weights are asked for
        (only its prefix rows (B, heads, P, T) where every adapter at 'attention' declares
        attention_rows = "prefix"; the output then comes from the fused attention)
    o = attn_drop(a) @ v  -- else timm's fused scaled_dot_product_attention(q, k, v) (its unfused path if it uses that)
    x = x + drop_path1(ls1(proj_drop(proj(norm(o)))))   (times timm's gate where the block has one)
    state = adapters at 'attention' (state.attention = a): may select or merge tokens
    x = x + drop_path2(ls2(mlp(norm2(x))))

With adapters that change nothing the result is bitwise timm's block (fused, or unfused
where the weights are computed), values and gradients.

Inside :func:`zslkit.ops.recompute.recompute_saved` (a training forward of a model that owns its
ViT) every block runs here, adapters or not, and marks the tensors backward can rebuild from
tensors it keeps anyway: the outputs of ``norm1`` and ``norm2`` (of their saved inputs) and the
MLP's activation that ``fc2`` would save (of ``fc1``'s output, which the activation's backward
keeps). Per token of a block with a ``4 D`` MLP, autograd then keeps ``10 D`` floats (the two
residual streams, ``qkv``, the attention output, ``fc1``'s output) instead of ``16 D``; backward
reruns the two norms and the activation, the same operations on the same inputs, so values and
gradients stay bitwise those of timm's block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from zslkit.adapters.plan import AdapterPlan
from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.ops.mlp_recompute import gelu_linear_recomputing_activation, mlp_recomputing_hidden
from zslkit.ops.recompute import recomputed, recomputing

__all__ = ["check_adaptable", "run_adapted_block"]

_BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")
_ATTENTION_PARTS = ("qkv", "num_heads", "head_dim", "scale", "q_norm", "k_norm", "attn_drop", "proj", "proj_drop")


def check_adaptable(block: nn.Module, index: int) -> None:
    """Refuse a block whose attention cannot be computed here (not a timm ``Block`` with timm's ``Attention``)."""
    from timm.layers import Attention

    missing = [p for p in _BLOCK_PARTS if not hasattr(block, p)]
    missing += [f"attn.{p}" for p in _ATTENTION_PARTS if not hasattr(getattr(block, "attn", None), p)]
    # timm's plain Attention only: others (rotary, relative-position, separate q/k/v) compute what this file does not
    if missing or type(block.attn) is not Attention or not isinstance(block.attn.qkv, nn.Linear):
        found = type(getattr(block, "attn", None)).__name__
        raise ValueError(f"block {index} ({type(block).__name__}) is not a timm pre-norm Block with timm's Attention "
                         f"(found attention {found}, missing {missing[:2]}); adapters at 'queries' or 'attention' need one")


def _has(plan: AdapterPlan | None, place: str, index: int) -> bool:
    return plan is not None and plan.has(place, index)


def _mlp(mlp: nn.Module, x: torch.Tensor, recompute_hidden: bool = False) -> torch.Tensor:
    """timm's ``Mlp`` on ``x`` ``(B, T, D)``, its activation marked recomputable from ``fc1``'s output where nothing
    between the activation and ``fc2`` keeps it (no dropout in training, no norm); any other MLP runs as itself.
    ``recompute_hidden``: keep neither, backward reruns ``fc1`` too (:mod:`zslkit.ops.mlp_recompute`)."""
    from timm.layers import Mlp

    plain = type(mlp) is Mlp and isinstance(mlp.norm, nn.Identity) and (not mlp.training or mlp.drop1.p == 0)
    if not plain:
        return mlp(x)
    if recompute_hidden:
        return mlp.drop2(mlp_recomputing_hidden(x, mlp.fc1, mlp.act, mlp.fc2))
    hidden = mlp.fc1(x)
    if type(mlp.act) is nn.GELU and recomputing():  # the same recipe, with a backward that holds less at once
        return mlp.drop2(gelu_linear_recomputing_activation(hidden, mlp.act, mlp.fc2))
    return mlp.drop2(mlp.fc2(recomputed(mlp.act, hidden)))


def _attention(attn: nn.Module, h: torch.Tensor, state: TokenState, plan: AdapterPlan | None, index: int,
               context: AdapterContext | None) -> tuple[torch.Tensor, torch.Tensor | None, TokenState]:
    """``(output (B, T, D) before the residual, weights (B, heads, T, T), its prefix rows (B, heads, P, T) or None,
    state with what the adapters at 'queries' recorded)`` of the block's attention on ``h``."""
    # three views of qkv's output (timm's layout: q, k, v one after another along the channels): their gradients
    # come back as one concatenation, where unbinding a (3, B, heads, T, d) view stacks them and copies that again
    q, k, v = (rearrange(part, "b t (heads d) -> b heads t d", heads=attn.num_heads) for part in attn.qkv(h).chunk(3, -1))
    q, k = attn.q_norm(q), attn.k_norm(k)
    if _has(plan, "queries", index):
        state = plan.run("queries", index, state.replace(queries=q), context)
        q, state = state.queries, state.replace(queries=None)
    weights = None
    prefix_rows = plan is not None and plan.prefix_rows_only(index) and getattr(attn, "fused_attn", True)
    if prefix_rows:  # the adapters read the prefix rows alone: those rows only, the output by the fused attention
        weights = ((q[:, :, : state.num_prefix] * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    if not prefix_rows and (_has(plan, "attention", index) or not getattr(attn, "fused_attn", True)):
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = attn.attn_drop(weights) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    out = getattr(attn, "norm", nn.Identity())(rearrange(out, "b heads t d -> b t (heads d)"))
    gate = getattr(attn, "gate", None)
    if gate is not None:
        out = out * gate(h).sigmoid()
    return attn.proj_drop(attn.proj(out)), weights if _has(plan, "attention", index) else None, state


def run_adapted_block(block: nn.Module, state: TokenState, plan: AdapterPlan | None, index: int,
                      context: AdapterContext | None, recompute_hidden: bool = False) -> TokenState:
    """Block ``index`` of the backbone on ``state``, with the adapters at its ``queries`` and ``attention`` places
    (``plan=None``: none; the block as timm's, its recomputable tensors marked); ``recompute_hidden``: its MLP
    keeps nothing of its own for backward (one more product in backward, ``8 D`` floats a token less)."""
    x = state.tokens
    out, weights, state = _attention(block.attn, recomputed(block.norm1, x), state, plan, index, context)
    state = state.replace(tokens=x + block.drop_path1(block.ls1(out)))
    if weights is not None:
        state = plan.run("attention", index, state.replace(attention=weights), context).replace(attention=None)
    x = state.tokens
    mlp = _mlp(block.mlp, recomputed(block.norm2, x), recompute_hidden)
    return state.replace(tokens=x + block.drop_path2(block.ls2(mlp)), queries=None)
