"""Adapters (kind ``adapter``): modules a model runs at named places of its ViT backbone's forward.

A model that owns a token backbone (:class:`~zslkit.models.token_model.TokenAttentionModel`)
names its adapters with the ``adapters=`` option (:mod:`zslkit.adapters.plan`); the backbone
(:class:`~zslkit.backbones.vit_tokens.TimmTokens`) calls each at its place of block ``k``
(:data:`~zslkit.adapters.tokens.PLACES`) as ``adapter(state, context) -> state``, with the
tokens (:class:`~zslkit.adapters.tokens.TokenState`), the model's attribute embeddings and, in
training, the batch's labels (:class:`~zslkit.adapters.tokens.AdapterContext`).

A factory is called as ``factory(token_dim=D, embedding_dim=D_e, num_attributes=I, **options)``.
Registered: ``identity``, ``keep_attended`` (keep the patch tokens the CLS token attends to most),
``semantic_query`` (the label's attributes mixed into the CLS query in training: ZSLViT's injection),
``dual_semantic_visual`` (PSVMA's semantic-visual module), ``reembed`` (the initial prefix tokens and
the position embedding put back) and ``semantic_tokens`` (SVIP's learnt tokens added to the patches a
model selected). SVIP's patch selector (:class:`PatchSelector`) runs before the backbone, on the patch embeddings.
"""

from zslkit.adapters.dual_semantic_visual import DualSemanticVisual
from zslkit.adapters.identity import IdentityAdapter
from zslkit.adapters.keep_attended import KeepAttended
from zslkit.adapters.patch_selector import PatchSelector, rollout_targets, selection_mask
from zslkit.adapters.plan import AdapterPlan, AdapterSpec, parse_adapter_specs
from zslkit.adapters.reembed import Reembed
from zslkit.adapters.semantic_query import SemanticQuery
from zslkit.adapters.semantic_tokens import SemanticTokens
from zslkit.adapters.tokens import PLACES, AdapterContext, TokenState, scatter_to_grid

__all__ = ["PLACES", "AdapterContext", "AdapterPlan", "AdapterSpec", "DualSemanticVisual", "IdentityAdapter", "KeepAttended",
           "PatchSelector", "Reembed", "SemanticQuery", "SemanticTokens", "TokenState",
           "parse_adapter_specs", "rollout_targets", "scatter_to_grid", "selection_mask"]
