"""``dual_semantic_visual``: PSVMA's dual semantic-visual transformer module, as an adapter (Liu et al., CVPR 2023).

On the patch tokens ``x`` ``(B, N, D)`` of the state and the attribute embeddings ``E``
``(I, D_e)`` of the context (PSVMA: fixed word vectors), with attribute prototypes
``P = E W`` ``(I, D)`` (``W`` learnt, ``(D_e, D)``) and the blocks of
:mod:`zslkit.adapters.semantic_visual_parts` (``att`` one :class:`RectifiedAttention`, ``g`` the
:class:`GroupGate`, ``f`` a :class:`NormMLP` of width ``D``; each used twice)::

    s_1, u   = att(P, x, x)               attribute -> patch, logits s_1 (B, I, N)
    P_1      = P + u;   P' = P + g(P_1) + f(g(P_1)) + P_1
    s_2, u   = att(P', x, x)              the same attention again, from the refined prototypes
    P_2      = P' + u;  P'' = g(P_2) + f(g(P_2)) + P_2
    _, o     = att_dec(x, P'', P'')       patch -> attribute (its own weights)
    x'       = mixer(x + o);  x'' = x' + ffn(x')       (mixer: TokenMixer; ffn: NormMLP of width 4D)

The patch tokens become ``x''``; the prefix tokens pass unchanged. Options ``group_gate=False``
(``g`` the identity) and ``token_mixer=False`` (``mixer`` the identity) take those parts out.
Recorded under the adapter's entry (``state.record``): ``first_scores = max_n s_1``, ``scores = max_n s_2``
``(B, I)`` and ``maps = s_2`` ``(B, I, N)`` (PSVMA regresses both scores onto the label's attributes; the maps
are its attribute localisation). PSVMA runs one module after block 11 and the same module
(``share``) after block 12 of a ViT-B/16; see :mod:`zslkit.models.psvma`.
"""

from __future__ import annotations

import torch
from einops import einsum, reduce
from torch import nn

from zslkit.adapters.semantic_visual_parts import GroupGate, NormMLP, RectifiedAttention, TokenMixer
from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.registry import register

__all__ = ["DualSemanticVisual"]


@register("adapter", "dual_semantic_visual")
class DualSemanticVisual(nn.Module):
    """PSVMA's semantic-visual module at the place ``after_block`` (see the module docstring).

    Args:
        token_dim: ``D`` (given by the model, as ``embedding_dim`` ``D_e`` and ``num_attributes`` ``I``).
        embedding_dim: ``D_e``, the width of the attribute embeddings.
        num_attributes: ``I``.
        groups: the attribute groups of the gate (its hidden width is ``I // groups``; PSVMA: CUB 28,
            SUN 4, AWA2 9).
        group_gate: use the gate ``g``.
        token_mixer: use the mixer across the patch tokens.
        num_patches: ``N`` the mixer is built for (196: a 224 px image in 16 px patches).
        mixer_hidden: the mixer's hidden width.
        ffn_ratio: the final FFN's width over ``D``.
    """

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int, groups: int = 28,
                 group_gate: bool = True, token_mixer: bool = True, num_patches: int = 196, mixer_hidden: int = 512,
                 ffn_ratio: int = 4) -> None:
        super().__init__()
        self.W = nn.Parameter(nn.init.trunc_normal_(torch.empty(embedding_dim, token_dim), std=0.01, a=-0.02, b=0.02))
        self.encode = RectifiedAttention(token_dim)
        self.decode = RectifiedAttention(token_dim)
        self.gate = GroupGate(num_attributes, groups) if group_gate else nn.Identity()
        self.refine = NormMLP(token_dim, token_dim)
        self.mixer = TokenMixer(token_dim, num_patches, mixer_hidden) if token_mixer else nn.Identity()
        self.ffn = NormMLP(token_dim, ffn_ratio * token_dim)

    def _refine(self, prototypes: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """``g(P_1) + f(g(P_1)) + P_1`` with ``P_1 = prototypes + attended``."""
        updated = prototypes + attended
        gated = self.gate(updated)
        return gated + self.refine(gated) + updated

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        x = state.patches
        prototypes = einsum(context.embeddings.to(x.dtype), self.W, "i e, e d -> i d").expand(x.shape[0], -1, -1)
        first, attended = self.encode(prototypes, x, x)
        refined = prototypes + self._refine(prototypes, attended)
        second, attended = self.encode(refined, x, x)
        refined = self._refine(refined, attended)
        _, out = self.decode(x, refined, refined)
        mixed = self.mixer(x + out)
        patches = mixed + self.ffn(mixed)
        return state.replace(tokens=torch.cat([state.prefix, patches], dim=1)).record(
            context.entry, first_scores=reduce(first, "b i n -> b i", "max"), scores=reduce(second, "b i n -> b i", "max"),
            maps=second)
