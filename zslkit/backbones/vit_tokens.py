"""``timm_tokens``: a timm ViT-family model as a token backbone -- prefix and patch tokens after the final norm.

Any timm model built on timm's ``VisionTransformer`` (ViT, DeiT, DeiT-distilled, the CLIP and
DINOv2 image towers as timm builds them, register models: patch tokens after
``num_prefix_tokens`` prefix tokens, blocks that take the tokens alone) is
built without weights and loaded from a local file as :class:`~zslkit.backbones.TimmBackbone`
does (a ``pos_embed`` for another grid is resampled to the model's). It is built with timm's
``dynamic_img_size=True`` by default, so timm resamples the position embeddings to the grid of
every input (a 448 px image through 224 px weights), as its own ``forward_features`` does.

``forward(images)`` returns the final :class:`~zslkit.adapters.TokenState`: ``prefix``
``(B, P, D)``, ``patches`` ``(B, N, D)`` after the model's final norm, the input ``grid`` and the
``source`` patch of every patch token. Equal to timm's ``forward_features`` split at ``P``.
With ``adapters`` (an :class:`~zslkit.adapters.AdapterPlan`) and a ``context``, block ``k``
(timm's own module, iterated from ``model.blocks``) runs with the adapters at its places; a block
with adapters at ``queries`` or ``attention`` computes its attention from its own qkv weights
(:mod:`zslkit.backbones.adapted_block`), every other block keeps timm's fused attention. Inside
:func:`zslkit.ops.recompute.recompute_saved` every block runs through ``adapted_block`` (the same
operations as timm's module), which marks what backward can rebuild instead of keeping it.
The adapters' context also gets the backbone's own prefix tokens and this input's position
embedding (``AdapterContext.prefix_tokens``, ``position_embedding``), for adapters that embed
tokens again (e.g. ``reembed``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from zslkit.adapters.plan import AdapterPlan
from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.backbones.adapted_block import check_adaptable, run_adapted_block
from zslkit.backbones.timm_backbone import TimmBackbone, _check_model_name, is_token_model
from zslkit.ops.recompute import recomputing
from zslkit.registry import register

__all__ = ["TimmTokens"]

#: timm's pooling and classifier parts (``forward_head``), which the tokens never pass through
_UNUSED_HEAD: tuple[str, ...] = ("attn_pool", "fc_norm", "head", "head_dist")


@register("backbone", "timm_tokens")
class TimmTokens(TimmBackbone):
    """Images ``(B, 3, S, S)`` -> :class:`~zslkit.adapters.TokenState` of a timm ViT-family model.

    Args:
        model_name: a timm ViT-family model (``"vit_base_patch16_224"``, ``"deit_tiny_distilled_patch16_224"``, ...).
        weights: local weights file in timm's layout; ``random_init``: random weights (tests only).
        dynamic_img_size: timm's option: resample the position embeddings to each input's grid.
        **model_kwargs: passed to ``timm.create_model`` (``img_size``, ``drop_path_rate``, ...).

    Attributes:
        feature_dim: the token width ``D``; ``num_prefix``: ``P``; ``depth``: the number of blocks.
    """

    def __init__(self, model_name: str = "vit_base_patch16_224", *, weights: str | Path | None = None,
                 random_init: bool = False, dynamic_img_size: bool = True, **model_kwargs: Any) -> None:
        _check_model_name(model_name)
        if not is_token_model(model_name):
            raise ValueError(f"timm model {model_name!r} is not a ViT-family model (no prefix and patch tokens); "
                             "use the 'timm' backbone for its region maps")
        super().__init__(model_name, weights=weights, random_init=random_init, dynamic_img_size=dynamic_img_size,
                         **model_kwargs)
        from timm.models.vision_transformer import VisionTransformer

        if not isinstance(self.model, VisionTransformer):  # e.g. EVA: its blocks take rotary embeddings too
            raise ValueError(f"timm model {model_name!r} ({type(self.model).__name__}) is not built on timm's "
                             "VisionTransformer, whose blocks take the tokens alone; timm_tokens reads ViT, DeiT, CLIP "
                             "and DINOv2 towers")
        for name in _UNUSED_HEAD:  # never run here: frozen, so DDP does not wait for their gradients
            part = getattr(self.model, name, None)
            if isinstance(part, torch.nn.Module):
                part.requires_grad_(False)
        self.model_kwargs = {"dynamic_img_size": dynamic_img_size, **model_kwargs}
        self.num_prefix = int(self.model.num_prefix_tokens)
        self.depth = len(self.model.blocks)
        self.feature_dim = int(self.model.num_features)

    def embed(self, images: torch.Tensor, patch_embedding: torch.Tensor | None = None) -> TokenState:
        """Patch embedding, prefix tokens, position embeddings and timm's pre-norm: the tokens entering block 0.
        ``patch_embedding``: ``model.patch_embed(images)`` computed once by a caller that reads the images more than
        once (SVIP's selector and two passes), used instead of computing it again."""
        model = self.model
        grid = tuple(int(g) for g in model.patch_embed.dynamic_feat_size(tuple(images.shape[-2:])))
        if patch_embedding is None:
            patch_embedding = model.patch_embed(images)
        elif patch_embedding.shape[0] != images.shape[0] or patch_embedding.shape[1:-1].numel() != grid[0] * grid[1]:
            raise ValueError(f"timm_tokens: patch_embedding of shape {tuple(patch_embedding.shape)} is not the patch "
                             f"embedding of {tuple(images.shape)} images ({grid[0]} x {grid[1]} patches); give "
                             "model.patch_embed(images)")
        tokens = model.norm_pre(model.patch_drop(model._pos_embed(patch_embedding)))
        if tokens.shape[1] != self.num_prefix + grid[0] * grid[1]:
            raise ValueError(f"timm_tokens: {tokens.shape[1]} tokens for a {grid} grid and {self.num_prefix} prefix "
                             "tokens; patch dropping (patch_drop_rate) is not supported")
        return TokenState(tokens, self.num_prefix, grid)

    def check_adapters(self, adapters: AdapterPlan) -> None:
        """Refuse adapters at blocks whose attention cannot be computed from their weights."""
        for spec in adapters.specs:
            if spec.place in ("queries", "attention"):
                check_adaptable(self.model.blocks[spec.block], spec.block)

    def forward(self, images: torch.Tensor, adapters: AdapterPlan | None = None,
                context: AdapterContext | None = None, patch_embedding: torch.Tensor | None = None,
                recompute_mlp_blocks: int = 0) -> TokenState:
        """``(B, 3, S, S)`` -> the tokens after the final norm (see the module docstring); ``patch_embedding``: as in
        :meth:`embed`; ``recompute_mlp_blocks``: inside :func:`~zslkit.ops.recompute.recompute_saved`, the first this
        many blocks keep nothing of their MLP for backward (:mod:`zslkit.ops.mlp_recompute`: ``fc1`` reruns there)."""
        state = self.embed(images, patch_embedding)
        if adapters is None or not adapters.specs:
            if recomputing():  # every block marks what backward can rebuild (adapted_block's docstring)
                for index, block in enumerate(self.model.blocks):
                    state = self._run_block(block, state, None, index, None, recompute_mlp_blocks)
                return state.replace(tokens=self.model.norm(state.tokens))
            return state.replace(tokens=self.model.norm(self.model.blocks(state.tokens)))
        if context is None:
            raise ValueError("timm_tokens: adapters need a context (the model's attribute embeddings and labels)")
        context = dataclasses.replace(context, prefix_tokens=self.prefix_tokens(),
                                      position_embedding=self.position_embedding(state.grid))
        for index, block in enumerate(self.model.blocks):
            state = adapters.run("before_block", index, state, context)
            if adapters.has("queries", index) or adapters.has("attention", index) or recomputing():
                state = self._run_block(block, state, adapters, index, context, recompute_mlp_blocks)
            else:
                state = state.replace(tokens=block(state.tokens))
            state = adapters.run("after_block", index, state, context)
        return state.replace(tokens=self.model.norm(state.tokens))

    def _run_block(self, block, state: TokenState, adapters: AdapterPlan | None, index: int,
                   context: AdapterContext | None, recompute_mlp_blocks: int) -> TokenState:
        """Block ``index`` through :func:`run_adapted_block`; while recomputing, the first ``recompute_mlp_blocks``
        keep nothing of their MLP."""
        recompute_hidden = recomputing() and index < recompute_mlp_blocks
        return run_adapted_block(block, state, adapters, index, context, recompute_hidden)

    def prefix_tokens(self) -> torch.Tensor | None:
        """``(1, P, D)`` the model's learnt prefix tokens (CLS, distillation, registers) in the order timm puts them."""
        names = ("cls_token", "dist_token", "reg_token")
        tokens = [t.reshape(1, -1, t.shape[-1]) for t in (getattr(self.model, n, None) for n in names) if t is not None]
        return torch.cat(tokens, dim=1) if tokens else None

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor | None:
        """The position embedding timm adds to an input of patch ``grid`` (resampled by timm's own function as its
        ``_pos_embed`` does); ``(1, P + N, D)``, or ``(1, N, D)`` for ``no_embed_class`` models; ``None`` without one."""
        model = self.model
        if model.pos_embed is None or not getattr(model, "dynamic_img_size", False):
            return model.pos_embed
        from timm.layers import resample_abs_pos_embed

        return resample_abs_pos_embed(model.pos_embed, new_size=grid, old_size=model.patch_embed.grid_size,
                                      num_prefix_tokens=0 if model.no_embed_class else model.num_prefix_tokens)

    @torch.no_grad()
    def feature_shape(self, image_size: int) -> tuple[int, int, int]:
        """``(D, H, W)``: the token width and the patch grid of one ``image_size`` image."""
        grid = self.model.patch_embed.dynamic_feat_size((image_size, image_size))
        return self.feature_dim, int(grid[0]), int(grid[1])

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: the timm model, its weights file and build options."""
        return {"name": "timm_tokens", "model": self.model_name, "weights": None if self.weights is None else str(self.weights),
                "options": self.model_kwargs}
